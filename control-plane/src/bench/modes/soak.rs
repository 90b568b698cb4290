//! soak: a steady rate for a long time, in small batches every 10 ms; RSS and p99 latency per window (runs once).

use super::super::client::{Client, NOOP, stamped_input};
use super::super::deployment::Deployment;
use super::super::recorder::{Want, epoch_ns};
use super::super::report::ModeRecord;
use super::super::stats::{percentile, sorted};
use super::super::{Bench, BenchError};
use super::{mib, secs};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use std::future::ready;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a batch is sent.
const PACE: Duration = Duration::from_millis(10);

#[derive(Debug, Serialize)]
struct Window {
    /// Seconds from the start of the soak to the end of the window.
    end_s: f64,
    tasks: usize,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    rss_mib: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Repetition {
    tasks: u64,
    completions: u64,
    target_rate: f64,
    /// Completions per second from the start to the last completion.
    achieved_rate: f64,
    seconds: f64,
    windows: Vec<Window>,
}

pub async fn run(b: &mut Bench) -> Result<ModeRecord, BenchError> {
    b.ensure_workers().await?;
    if b.sizes.repeat > 1 {
        b.notes.push("soak runs once whatever --repeat says".into());
    }
    let (duration, rate, window) = (b.sizes.soak_duration, b.sizes.soak_rate, b.sizes.soak_window);
    b.rec.reset(Want::Acked(u64::MAX));
    let sent = Arc::new(AtomicU64::new(0));
    let (bulk, in_flight) = if b.sizes.per_call { (false, b.sizes.in_flight) } else { (true, b.sizes.batch_in_flight) };
    let expected = (duration.as_secs_f64() * rate) as u64;
    let start = Instant::now();
    let start_ns = epoch_ns();
    let pacer = Pacer { client: &b.client, rate, duration, window, bulk, batch: b.sizes.batch, in_flight };
    let deployment = b.deployment();
    let (rss, _) = b.drive("soak", None, expected, &sent, pacer.run(deployment, &sent)).await?;
    let total = sent.load(Ordering::Relaxed);
    b.rec.want(Want::Acked(total));
    let (_, at) = b.drive("soak (finishing)", Some(Want::Acked(total)), total, &sent, ready(Ok(()))).await?;
    let seconds = secs(start, at.reached);
    let latencies = b.rec.take_latencies();
    let width = window.as_nanos().max(1) as u64;
    let count = rss.len().max(1);
    let mut buckets: Vec<Vec<f64>> = vec![Vec::new(); count];
    for (t, l) in latencies {
        let i = (t.saturating_sub(start_ns) / width) as usize;
        buckets[i.min(count - 1)].push(l as f64 / 1e6);
    }
    let windows: Vec<Window> = buckets
        .into_iter()
        .zip(&rss)
        .enumerate()
        .map(|(i, (ms, rss))| {
            let s = sorted(ms);
            Window {
                end_s: ((i + 1) as f64 * window.as_secs_f64()).min(duration.as_secs_f64()),
                tasks: s.len(),
                p50_ms: percentile(&s, 50.0),
                p99_ms: percentile(&s, 99.0),
                rss_mib: *rss,
            }
        })
        .collect();
    let r = Repetition {
        tasks: total,
        completions: b.rec.counts().acked,
        target_rate: rate,
        achieved_rate: total as f64 / seconds,
        seconds,
        windows,
    };
    b.figures.add("soak", "rate", "soak rate achieved", "tasks/s", r.achieved_rate);
    let (first, last) = (r.windows.first(), r.windows.last());
    for (what, w) in [("first", first), ("last", last)] {
        let Some(w) = w else { continue };
        let first = what == "first";
        if let Some(v) = w.rss_mib {
            let label = if first { "soak RSS, first window" } else { "soak RSS, last window" };
            b.figures.add("soak", &format!("rss_{what}"), label, "MiB", v);
        }
        if let Some(v) = w.p99_ms {
            let label = if first { "soak p99 latency, first window" } else { "soak p99 latency, last window" };
            b.figures.add("soak", &format!("p99_{what}"), label, "ms", v);
        }
    }
    b.phase(format!("soak: {total} tasks in {seconds:.1}s at {rate}/s asked: {:.0}/s achieved", r.achieved_rate));
    Ok(ModeRecord { repetitions: vec![serde_json::to_value(&r).unwrap_or_default()] })
}

/// Sends runs at `rate` for `duration`, every 10 ms what is due, and samples RSS at each window's end.
struct Pacer<'a> {
    client: &'a Client,
    rate: f64,
    duration: Duration,
    window: Duration,
    bulk: bool,
    batch: usize,
    in_flight: usize,
}

impl Pacer<'_> {
    /// Returns the RSS at the end of each window.
    async fn run(&self, deployment: &Deployment, sent: &Arc<AtomicU64>) -> Result<Vec<Option<f64>>, BenchError> {
        let start = Instant::now();
        let mut tick = tokio::time::interval(PACE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut calls = FuturesUnordered::new();
        let (mut issued, mut done) = (0u64, false);
        let mut next_window = start + self.window;
        let mut rss = Vec::new();
        let sample = || deployment.rss().map(|r| mib(r.now_bytes));
        loop {
            if done && calls.is_empty() {
                return Ok(rss);
            }
            tokio::select! {
                _ = tick.tick(), if !done => {
                    let now = Instant::now();
                    let end = start + self.duration;
                    while now >= next_window && next_window < end {
                        rss.push(sample());
                        next_window += self.window;
                    }
                    if now >= end {
                        rss.push(sample());
                        done = true;
                        continue;
                    }
                    let due = ((now - start).as_secs_f64() * self.rate) as u64;
                    while issued < due && calls.len() < self.in_flight {
                        let size = if self.bulk { (due - issued).min(self.batch as u64) } else { 1 };
                        let inputs: Vec<String> = (0..size).map(|_| stamped_input()).collect();
                        let bulk = self.bulk;
                        let client = self.client;
                        calls.push(async move {
                            if bulk { client.trigger_many(NOOP, inputs).await } else { client.trigger(NOOP, inputs.concat()).await }
                                .map(|()| size)
                        });
                        issued += size;
                    }
                }
                Some(r) = calls.next(), if !calls.is_empty() => {
                    sent.fetch_add(r?, Ordering::Relaxed);
                }
            }
        }
    }
}
