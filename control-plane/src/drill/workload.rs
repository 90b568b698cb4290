//! The drills' workload: their workflows, and triggers sent in bulk or as a steady stream, retried with their keys.

use super::client::{Api, retryable};
use futures::StreamExt;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One `sleep` task; input `{"ms": N}`.
pub const SLEEP: &str = "drill-sleep";
/// A diamond of `sleep` tasks: a, then b and c, then d; input `{"ms": N}`.
pub const CHAIN: &str = "drill-chain";
/// One `crash` task: the example worker aborts its process when it runs it.
pub const POISON: &str = "drill-poison";
/// Attempts of the poison task before it is dead-lettered.
pub const POISON_ATTEMPTS: u32 = 3;

const RETRY: &str = "retry: {max_attempts: 5, initial_backoff: 100ms, max_backoff: 1s}";

/// The YAML of a drill workflow.
pub fn workflow(name: &str) -> String {
    match name {
        CHAIN => format!(
            "name: {CHAIN}\ntasks:\n  - {{name: a, task_type: sleep, {RETRY}}}\n  - {{name: b, task_type: sleep, depends_on: [a], {RETRY}}}\n  - {{name: c, task_type: sleep, depends_on: [a], {RETRY}}}\n  - {{name: d, task_type: sleep, depends_on: [b, c], {RETRY}}}\n"
        ),
        POISON => format!(
            "name: {POISON}\ntasks:\n  - {{name: boom, task_type: crash, retry: {{max_attempts: {POISON_ATTEMPTS}, initial_backoff: 100ms, max_backoff: 200ms}}}}\n"
        ),
        _ => format!("name: {SLEEP}\ntasks:\n  - {{name: s, task_type: sleep, {RETRY}}}\n"),
    }
}

/// `{"ms": N}`.
pub fn sleep_input(ms: u64) -> String {
    serde_json::json!({ "ms": ms }).to_string()
}

/// A trigger to send.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub workflow: String,
    pub input: String,
    pub key: Option<String>,
}

/// A trigger the API acknowledged.
#[derive(Debug, Clone, Serialize)]
pub struct Ack {
    pub workflow: String,
    pub key: Option<String>,
    pub run_id: String,
    pub created: bool,
    /// Calls it took (more than 1: it was retried with the same key).
    pub calls: u32,
    pub endpoint: String,
    /// From the first call to the acknowledgement.
    pub latency_ms: u64,
}

/// A trigger that was never acknowledged.
#[derive(Debug, Clone, Serialize)]
pub struct GaveUp {
    pub key: Option<String>,
    pub calls: u32,
    pub last_error: String,
}

/// What a batch or a stream of triggers got.
#[derive(Debug, Default, Clone)]
pub struct Triggers {
    pub acks: Vec<Ack>,
    pub gave_up: Vec<GaveUp>,
    /// Calls that failed and were sent again.
    pub retried_calls: u64,
}

impl Triggers {
    pub fn extend(&mut self, other: Triggers) {
        self.acks.extend(other.acks);
        self.gave_up.extend(other.gave_up);
        self.retried_calls += other.retried_calls;
    }
}

/// Sends one trigger; with a key and `retry_until`, sends it again after a retryable failure.
async fn send(api: &Api, t: &Trigger, retry_until: Option<Instant>) -> Result<Ack, GaveUp> {
    let mut calls = 0;
    let mut backoff = Duration::from_millis(100);
    let started = Instant::now();
    loop {
        calls += 1;
        match api.trigger(&t.workflow, &t.input, t.key.as_deref()).await {
            Ok(out) => {
                let run_id = out.run.map(|r| r.id).unwrap_or_default();
                return Ok(Ack {
                    workflow: t.workflow.clone(),
                    key: t.key.clone(),
                    run_id,
                    created: out.created,
                    calls,
                    endpoint: api.endpoint.clone(),
                    latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                });
            }
            Err(status) => {
                let again = t.key.is_some()
                    && retryable(&status)
                    && retry_until.is_some_and(|until| Instant::now() + backoff < until);
                if !again {
                    let last_error = format!("{:?}: {}", status.code(), status.message());
                    return Err(GaveUp { key: t.key.clone(), calls, last_error });
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

fn collect(results: Vec<Result<Ack, GaveUp>>) -> Triggers {
    let mut out = Triggers::default();
    for r in results {
        match r {
            Ok(ack) => {
                out.retried_calls += u64::from(ack.calls - 1);
                out.acks.push(ack);
            }
            Err(g) => {
                out.retried_calls += u64::from(g.calls.saturating_sub(1));
                out.gave_up.push(g);
            }
        }
    }
    out
}

/// Sends `triggers`, `concurrency` at a time, the i-th to `apis[i % apis.len()]`.
pub async fn send_all(apis: &[Api], triggers: Vec<Trigger>, concurrency: usize, retry_for: Duration) -> Triggers {
    let until = Instant::now() + retry_for;
    let results = futures::stream::iter(triggers.into_iter().enumerate())
        .map(|(i, t)| {
            let api = apis[i % apis.len()].clone();
            async move { send(&api, &t, Some(until)).await }
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    collect(results)
}

/// A steady stream of keyed triggers, each retried with its key until acknowledged (or its deadline).
#[derive(Debug)]
pub struct TriggerStream {
    stop: CancellationToken,
    handle: JoinHandle<Triggers>,
    acked: Arc<AtomicU64>,
    failed_calls: Arc<AtomicU64>,
}

impl TriggerStream {
    /// Starts sending a trigger of `workflow` every `every` (at most `in_flight` unanswered),
    /// to the control planes in turn, with keys `PREFIX-0`, `PREFIX-1`, …
    pub fn start(
        apis: Vec<Api>,
        workflow: &str,
        input: String,
        every: Duration,
        in_flight: usize,
        retry_for: Duration,
        prefix: String,
    ) -> Self {
        let stop = CancellationToken::new();
        let acked = Arc::new(AtomicU64::new(0));
        let failed_calls = Arc::new(AtomicU64::new(0));
        let (s, a, f, workflow) = (stop.clone(), acked.clone(), failed_calls.clone(), workflow.to_owned());
        let handle = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let limit = Arc::new(tokio::sync::Semaphore::new(in_flight.max(1)));
            let mut running = Vec::new();
            let mut n = 0u64;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = s.cancelled() => break,
                }
                let Ok(permit) = limit.clone().acquire_owned().await else { break };
                let api = apis[usize::try_from(n).unwrap_or(0) % apis.len()].clone();
                let t =
                    Trigger { workflow: workflow.clone(), input: input.clone(), key: Some(format!("{prefix}-{n}")) };
                n += 1;
                let (a, f) = (a.clone(), f.clone());
                running.push(tokio::spawn(async move {
                    let r = send(&api, &t, Some(Instant::now() + retry_for)).await;
                    match &r {
                        Ok(ack) => {
                            a.fetch_add(1, Ordering::Relaxed);
                            f.fetch_add(u64::from(ack.calls - 1), Ordering::Relaxed);
                        }
                        Err(g) => {
                            f.fetch_add(u64::from(g.calls), Ordering::Relaxed);
                        }
                    }
                    drop(permit);
                    r
                }));
            }
            let mut results = Vec::with_capacity(running.len());
            for h in running {
                if let Ok(r) = h.await {
                    results.push(r);
                }
            }
            collect(results)
        });
        Self { stop, handle, acked, failed_calls }
    }

    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Calls that failed so far (each is retried with its key).
    pub fn failed_calls(&self) -> u64 {
        self.failed_calls.load(Ordering::Relaxed)
    }

    /// Stops sending new triggers and waits for those in flight to be answered or to give up.
    pub async fn finish(self) -> Triggers {
        self.stop.cancel();
        self.handle.await.unwrap_or_default()
    }
}
