//! One worker stream: flow control by slots, dispatch from the queue into leases, results, heartbeats, drain.

use super::complete::{Completion, Outcome, Verdict};
use super::dispatch::Assignment;
use super::{Engine, EngineError};
use crate::domain::flow::Priority;
use crate::domain::limits::{self, is_valid_name};
use crate::domain::records::Tenant;
use crate::queue;
use crate::store::leases::LeaseKey;
use crate::store::workers::{self, WorkerRow};
use futures::{FutureExt, Stream, StreamExt};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Most slots one stream may ask for.
pub const MAX_SLOTS: u32 = 10_000;
/// Most task types one stream may serve.
pub const MAX_TASK_TYPES: usize = 100;
/// Most results of one stream applied in one transaction.
const MAX_RESULT_BATCH: usize = 512;

/// What a worker says first.
#[derive(Debug, Clone, Default)]
pub struct Hello {
    pub worker_name: String,
    pub task_types: Vec<String>,
    pub slots: u32,
    pub labels: BTreeMap<String, String>,
    pub sdk_language: String,
    pub sdk_version: String,
}

/// A message from the worker after Hello.
#[derive(Debug, Clone)]
pub enum Inbound {
    Heartbeat(Vec<LeaseKey>),
    /// `key` is None when the worker sent no (or a malformed) lease id.
    Result {
        task_id: Uuid,
        attempt: u32,
        lease_id: Option<Uuid>,
        outcome: Outcome,
    },
    Credits(u32),
    Drain,
    /// A result that cannot be applied as sent.
    Malformed {
        task_id: Uuid,
        attempt: u32,
        lease_id: Option<Uuid>,
        reason: String,
    },
}

/// Why a result was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The lease is not current: FAILED_PRECONDITION.
    StaleLease,
    /// The result itself is malformed: INVALID_ARGUMENT.
    Malformed,
}

/// A message to the worker.
#[derive(Debug, Clone)]
pub enum Outbound {
    Welcome { worker_id: Uuid, heartbeat_interval: Duration, lease_ttl: Duration },
    Assign(Box<Assignment>),
    Cancel { key: LeaseKey, reason: String },
    Ack { task_id: Uuid, attempt: u32, lease_id: Option<Uuid>, rejected: Option<(Rejection, String)> },
}

/// Streams of this control plane, by worker id, so cancellations reach them at once.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    streams: Arc<Mutex<HashMap<String, LocalStream>>>,
}

/// What the registry keeps of one stream.
#[derive(Debug, Clone)]
struct LocalStream {
    tx: mpsc::Sender<Outbound>,
    flow: Arc<Mutex<Flow>>,
    /// The task types it serves (for the slot gauges).
    types: Arc<[String]>,
}

impl Registry {
    fn insert(&self, id: &str, tx: mpsc::Sender<Outbound>, flow: Arc<Mutex<Flow>>, types: Arc<[String]>) {
        self.streams.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_owned(), LocalStream { tx, flow, types });
    }

    /// Calls `each(task_type, free, used)` for every task type of every stream; returns how
    /// many streams there are.
    pub fn slots(&self, mut each: impl FnMut(&str, u32, usize)) -> usize {
        let streams: Vec<LocalStream> =
            self.streams.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        for s in &streams {
            let (free, used) = {
                let f = lock(&s.flow);
                (if f.draining { 0 } else { f.free }, f.held.len())
            };
            for t in s.types.iter() {
                each(t, free, used);
            }
        }
        streams.len()
    }

    /// Free slots of the stream `worker_id` if this control plane holds it.
    pub fn free_slots(&self, worker_id: &str) -> Option<u32> {
        let flow = self.streams.lock().unwrap_or_else(|p| p.into_inner()).get(worker_id).map(|s| s.flow.clone())?;
        let free = lock(&flow).free;
        Some(free)
    }

    fn remove(&self, id: &str) {
        self.streams.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Sends to the stream of `worker_id` if this control plane holds it; other control
    /// planes' workers learn on their next heartbeat.
    pub fn try_send(&self, worker_id: &str, msg: Outbound) {
        let tx = self.streams.lock().unwrap_or_else(|p| p.into_inner()).get(worker_id).map(|s| s.tx.clone());
        // A busy stream gets it in the background rather than not at all.
        if let Some(tx) = tx
            && let Err(mpsc::error::TrySendError::Full(msg)) = tx.try_send(msg)
        {
            tokio::spawn(async move {
                let _ = tx.send(msg).await;
            });
        }
    }

    pub fn len(&self) -> usize {
        self.streams.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug)]
struct Flow {
    free: u32,
    held: HashSet<LeaseKey>,
    draining: bool,
}

fn check_hello(h: &Hello) -> Result<(), EngineError> {
    if h.task_types.is_empty() {
        return Err(EngineError::invalid("hello.task_types", "a worker must serve at least one task type"));
    }
    if h.task_types.len() > MAX_TASK_TYPES {
        return Err(EngineError::invalid("hello.task_types", format!("at most {MAX_TASK_TYPES} task types")));
    }
    if let Some((i, t)) = h.task_types.iter().enumerate().find(|(_, t)| !is_valid_name(t)) {
        return Err(EngineError::invalid(format!("hello.task_types[{i}]"), format!("{t:?} is not a valid task type")));
    }
    if h.slots == 0 || h.slots > MAX_SLOTS {
        return Err(EngineError::invalid("hello.slots", format!("must be between 1 and {MAX_SLOTS}")));
    }
    let too_long = |field: String, value: &str, limit: usize| {
        (value.len() > limit)
            .then(|| EngineError::invalid(field, format!("{} bytes; the limit is {limit}", value.len())))
    };
    if let Some(e) = too_long("hello.worker_name".into(), &h.worker_name, limits::MAX_WORKER_NAME_LEN)
        .or_else(|| too_long("hello.sdk_language".into(), &h.sdk_language, limits::MAX_SDK_FIELD_LEN))
        .or_else(|| too_long("hello.sdk_version".into(), &h.sdk_version, limits::MAX_SDK_FIELD_LEN))
    {
        return Err(e);
    }
    if h.labels.len() > limits::MAX_WORKER_LABELS {
        let reason = format!("{} labels; the limit is {}", h.labels.len(), limits::MAX_WORKER_LABELS);
        return Err(EngineError::invalid("hello.labels", reason));
    }
    for (k, v) in &h.labels {
        let problem = too_long(format!("hello.labels[{k:?}] (key)"), k, limits::MAX_LABEL_KEY_LEN)
            .or_else(|| too_long(format!("hello.labels[{k:?}]"), v, limits::MAX_LABEL_VALUE_LEN));
        if let Some(e) = problem {
            return Err(e);
        }
    }
    Ok(())
}

impl Engine {
    /// Serves one worker stream until the worker closes it (or `shutdown`): registers the
    /// worker, sends Welcome, then leases work while it has free slots and answers its
    /// messages. Leases it holds at the end stay until they expire or it reconnects; they are
    /// returned, so that a caller ending the stream for good (a revoked token) can release them.
    pub async fn serve_worker<S>(
        &self,
        tenant: Tenant,
        hello: Hello,
        inbound: S,
        out: mpsc::Sender<Outbound>,
        shutdown: CancellationToken,
        started: tokio::sync::oneshot::Sender<Result<(), EngineError>>,
    ) -> Result<Vec<LeaseKey>, EngineError>
    where
        S: Stream<Item = Inbound> + Send + Unpin,
    {
        if let Err(e) = check_hello(&hello) {
            let _ = started.send(Err(e));
            return Ok(Vec::new());
        }
        if let Err(e) = self.admit_worker(&tenant).await {
            let _ = started.send(Err(e));
            return Ok(Vec::new());
        }
        let mut types = hello.task_types.clone();
        types.sort();
        types.dedup();
        let worker_id = Uuid::now_v7();
        let id = worker_id.to_string();
        let now = self.now();
        let row = WorkerRow {
            id: worker_id,
            name: hello.worker_name.clone(),
            task_types: types.clone(),
            slots: hello.slots,
            labels: hello.labels.clone(),
            sdk_language: hello.sdk_language.clone(),
            sdk_version: hello.sdk_version.clone(),
            control_plane: self.node_id.clone(),
            draining: false,
            connected_at: now,
            last_heartbeat_at: now,
        };
        if let Err(e) = workers::insert(self.store.conn(), &tenant, &row).await {
            let _ = started.send(Err(e.into()));
            return Ok(Vec::new());
        }
        let _ = started.send(Ok(()));
        let flow = Arc::new(Mutex::new(Flow { free: hello.slots, held: HashSet::new(), draining: false }));
        self.registry.insert(&id, out.clone(), flow.clone(), types.clone().into());
        let welcome = Outbound::Welcome {
            worker_id,
            heartbeat_interval: self.settings.heartbeat_interval,
            lease_ttl: self.settings.lease_ttl,
        };
        let _ = out.send(welcome).await;
        tracing::info!(worker = %id, name = %hello.worker_name, types = ?types, slots = hello.slots, "worker connected");

        let wake = Arc::new(Notify::new());
        let stop = shutdown.child_token();
        let dispatcher = tokio::spawn(self.clone().dispatch_loop(
            tenant.clone(),
            id.clone(),
            types.clone(),
            flow.clone(),
            wake.clone(),
            out.clone(),
            stop.clone(),
        ));
        let result = self.answer_loop(&tenant, &id, worker_id, inbound, &flow, &wake, &out, &stop).await;
        stop.cancel();
        let _ = dispatcher.await;
        self.registry.remove(&id);
        let db_now = self.db_now(self.now());
        if let Err(e) = workers::disconnect(self.store.conn(), worker_id, db_now).await {
            tracing::warn!(worker = %id, error = %e, "cannot record disconnection");
        }
        if let Err(e) = self.queue.release_consumer(tenant.as_str(), &Lanes::of(&types).all, &id).await {
            tracing::debug!(worker = %id, error = %e, "cannot release queue consumer");
        }
        tracing::info!(worker = %id, "worker disconnected");
        let held = lock(&flow).held.iter().copied().collect();
        result.map(|()| held)
    }

    #[allow(clippy::too_many_arguments)]
    async fn answer_loop<S>(
        &self,
        tenant: &Tenant,
        id: &str,
        worker_id: Uuid,
        mut inbound: S,
        flow: &Mutex<Flow>,
        wake: &Notify,
        out: &mpsc::Sender<Outbound>,
        stop: &CancellationToken,
    ) -> Result<(), EngineError>
    where
        S: Stream<Item = Inbound> + Send + Unpin,
    {
        // Messages read while gathering a batch of results, answered next.
        let mut deferred: VecDeque<Inbound> = VecDeque::new();
        let mut ended = false;
        loop {
            let msg = match deferred.pop_front() {
                Some(m) => Some(m),
                None if ended => None,
                None => tokio::select! {
                    m = inbound.next() => m,
                    () = stop.cancelled() => None,
                },
            };
            let Some(msg) = msg else { return Ok(()) };
            match msg {
                Inbound::Heartbeat(held) => {
                    self.metrics.workers().heartbeat();
                    let draining = lock(flow).draining;
                    let in_flight: Vec<LeaseKey> = lock(flow).held.iter().copied().collect();
                    let beat = self.heartbeat(tenant, id, &held, &in_flight).await?;
                    {
                        // Leases kept from an earlier stream count against this stream's slots;
                        // leases this stream lost (reaped, cancelled) no longer do.
                        let mut f = lock(flow);
                        for key in &beat.kept {
                            if f.held.insert(*key) {
                                f.free = f.free.saturating_sub(1);
                            }
                        }
                        for key in &beat.stale {
                            if f.held.remove(key) {
                                f.free += 1;
                            }
                        }
                    }
                    wake.notify_one();
                    workers::touch(self.store.conn(), worker_id, draining, self.db_now(self.now())).await?;
                    for key in beat.stale {
                        let reason = "the lease is no longer current (cancelled, expired or re-leased)".to_owned();
                        let _ = out.send(Outbound::Cancel { key, reason }).await;
                    }
                }
                Inbound::Result { task_id, attempt, lease_id, outcome } => {
                    // Every result already received joins this one: one transaction for all.
                    let mut batch = vec![(task_id, attempt, lease_id, outcome)];
                    while deferred.is_empty() && batch.len() < MAX_RESULT_BATCH {
                        match inbound.next().now_or_never() {
                            Some(Some(Inbound::Result { task_id, attempt, lease_id, outcome })) => {
                                batch.push((task_id, attempt, lease_id, outcome));
                            }
                            Some(Some(other)) => deferred.push_back(other),
                            Some(None) => {
                                ended = true;
                                break;
                            }
                            None => break,
                        }
                    }
                    let (acks, failure) = self.answer_results(tenant, batch, flow).await;
                    wake.notify_one();
                    for ack in acks {
                        let _ = out.send(ack).await;
                    }
                    if let Some(e) = failure {
                        return Err(e);
                    }
                }
                Inbound::Credits(n) => {
                    let mut f = lock(flow);
                    f.free = f.free.saturating_add(n).min(MAX_SLOTS);
                    drop(f);
                    wake.notify_one();
                }
                Inbound::Malformed { task_id, attempt, lease_id, reason } => {
                    if let Some(lease_id) = lease_id {
                        release(flow, &LeaseKey { task_id, attempt, lease_id });
                        wake.notify_one();
                    }
                    let rejected = Some((Rejection::Malformed, reason));
                    let _ = out.send(Outbound::Ack { task_id, attempt, lease_id, rejected }).await;
                }
                Inbound::Drain => {
                    lock(flow).draining = true;
                    tracing::info!(worker = %id, "worker draining");
                }
            }
        }
    }

    /// Applies a batch of results (one transaction) and gives the ack of each, in order, up to
    /// the first that could not be applied (whose error ends the stream).
    async fn answer_results(
        &self,
        tenant: &Tenant,
        batch: Vec<(Uuid, u32, Option<Uuid>, Outcome)>,
        flow: &Mutex<Flow>,
    ) -> (Vec<Outbound>, Option<EngineError>) {
        let mut acks: Vec<Option<Outbound>> = Vec::with_capacity(batch.len());
        let mut completions = Vec::with_capacity(batch.len());
        for (task_id, attempt, lease_id, outcome) in batch {
            let Some(lease_id) = lease_id else {
                let reason = "lease_id is required on every result (echo the assignment's lease_id)".to_owned();
                let rejected = Some((Rejection::Malformed, reason));
                acks.push(Some(Outbound::Ack { task_id, attempt, lease_id, rejected }));
                continue;
            };
            let key = LeaseKey { task_id, attempt, lease_id };
            // The slot comes back whatever the verdict: the worker is done with this attempt.
            release(flow, &key);
            completions.push(Completion { key, outcome });
            acks.push(None);
        }
        let keys: Vec<LeaseKey> = completions.iter().map(|c| c.key).collect();
        let verdicts = if completions.is_empty() { Vec::new() } else { self.complete_many(tenant, completions).await };
        let mut verdicts = keys.into_iter().zip(verdicts);
        let mut out = Vec::with_capacity(acks.len());
        for ack in acks {
            if let Some(ack) = ack {
                out.push(ack);
                continue;
            }
            let Some((key, verdict)) = verdicts.next() else { break };
            let rejected = match verdict {
                Ok(Verdict::Accepted) => None,
                Ok(Verdict::Stale { reason }) => {
                    tracing::info!(task = %key.task_id, attempt = key.attempt, %reason, "stale result rejected");
                    Some((Rejection::StaleLease, reason))
                }
                Err(e) => return (out, Some(e)),
            };
            out.push(Outbound::Ack {
                task_id: key.task_id,
                attempt: key.attempt,
                lease_id: Some(key.lease_id),
                rejected,
            });
        }
        (out, None)
    }

    /// Leases work for one stream while it has free slots and is not draining.
    #[allow(clippy::too_many_arguments)]
    async fn dispatch_loop(
        self,
        tenant: Tenant,
        id: String,
        types: Vec<String>,
        flow: Arc<Mutex<Flow>>,
        wake: Arc<Notify>,
        out: mpsc::Sender<Outbound>,
        stop: CancellationToken,
    ) {
        let lanes = Lanes::of(&types);
        while !stop.is_cancelled() {
            let free = {
                let f = lock(&flow);
                if f.draining { 0 } else { f.free }
            };
            if free == 0 {
                tokio::select! {
                    () = wake.notified() => continue,
                    () = stop.cancelled() => return,
                }
            }
            let max = usize::try_from(free).unwrap_or(usize::MAX);
            let read = tokio::select! {
                r = self.read_by_priority(&tenant, &lanes, &id, max) => r,
                () = stop.cancelled() => return,
            };
            let deliveries = match read {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(worker = %id, error = %e, "queue read failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(500)) => continue,
                        () = stop.cancelled() => return,
                    }
                }
            };
            if deliveries.is_empty() {
                continue;
            }
            let mut ids: Vec<Uuid> = deliveries.iter().map(|d| d.task_id).collect();
            ids.sort();
            ids.dedup();
            let leased = self.lease(&tenant, &id, &ids).await;
            // Assignments go out before the queue hears of the deliveries: the worker waits on
            // the first, nothing waits on the second.
            let mut closed = false;
            match leased {
                Ok(assignments) if lock(&flow).draining => {
                    // The worker asked for no more work while these were being leased.
                    let keys: Vec<LeaseKey> = assignments.iter().map(|a| a.key).collect();
                    if let Err(e) = self.release(&tenant, &keys).await {
                        tracing::warn!(worker = %id, error = %e, "cannot hand back leases; they expire");
                    }
                }
                Ok(assignments) => {
                    for a in assignments {
                        {
                            let mut f = lock(&flow);
                            f.free = f.free.saturating_sub(1);
                            f.held.insert(a.key);
                        }
                        if out.send(Outbound::Assign(Box::new(a))).await.is_err() {
                            closed = true;
                            break;
                        }
                    }
                }
                Err(e) => tracing::warn!(worker = %id, error = %e, "leasing failed; the reconciler republishes"),
            }
            if let Err(e) = self.queue.ack(tenant.as_str(), &deliveries).await {
                tracing::debug!(worker = %id, error = %e, "queue ack failed");
            }
            if closed {
                return;
            }
        }
    }
}

/// The queue lanes of a worker stream's task types, by priority.
struct Lanes {
    high: Vec<String>,
    normal: Vec<String>,
    low: Vec<String>,
    all: Vec<String>,
}

impl Lanes {
    fn of(types: &[String]) -> Self {
        let (high, normal, low) = (
            queue::lanes(types, Priority::High),
            queue::lanes(types, Priority::Normal),
            queue::lanes(types, Priority::Low),
        );
        let all = high.iter().chain(&normal).chain(&low).cloned().collect();
        Self { high, normal, low, all }
    }
}

impl Engine {
    /// Up to `max` deliveries, highest priority first: what the high lanes hold, then the normal
    /// ones, then the low ones (each read without waiting, for what is still free); when all
    /// are empty, one read waits on every lane at once for whatever comes first.
    async fn read_by_priority(
        &self,
        tenant: &Tenant,
        lanes: &Lanes,
        consumer: &str,
        max: usize,
    ) -> Result<Vec<queue::Delivery>, queue::QueueError> {
        let mut got = Vec::new();
        for lane in [&lanes.high, &lanes.normal, &lanes.low] {
            let want = max - got.len();
            if want == 0 {
                return Ok(got);
            }
            match self.queue.read(tenant.as_str(), lane, consumer, want, Duration::ZERO).await {
                Ok(d) => got.extend(d),
                // What earlier lanes gave is still good.
                Err(e) if !got.is_empty() => {
                    tracing::debug!(error = %e, "queue read failed after an earlier lane answered");
                    return Ok(got);
                }
                Err(e) => return Err(e),
            }
        }
        if !got.is_empty() {
            return Ok(got);
        }
        self.queue.read(tenant.as_str(), &lanes.all, consumer, max, self.settings.dispatch_block).await
    }
}

/// Gives back the slot of `key` if this stream holds it (once, however often it is called).
fn release(flow: &Mutex<Flow>, key: &LeaseKey) {
    let mut f = lock(flow);
    if f.held.remove(key) {
        f.free += 1;
    }
}

fn lock(m: &Mutex<Flow>) -> std::sync::MutexGuard<'_, Flow> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod hello_tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            worker_name: "w".into(),
            task_types: vec!["t".into()],
            slots: 1,
            labels: BTreeMap::new(),
            sdk_language: "rust".into(),
            sdk_version: "1".into(),
        }
    }

    fn field(h: &Hello) -> String {
        match check_hello(h) {
            Err(EngineError::InvalidArgument { field, reason }) => format!("{field}: {reason}"),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn oversized_hello_fields_are_named_with_their_limit() {
        assert!(check_hello(&hello()).is_ok());
        let h = Hello { worker_name: "n".repeat(300), ..hello() };
        assert_eq!(field(&h), "hello.worker_name: 300 bytes; the limit is 256");
        let h = Hello { labels: (0..65).map(|i| (format!("k{i}"), "v".into())).collect(), ..hello() };
        assert_eq!(field(&h), "hello.labels: 65 labels; the limit is 64");
        let h = Hello { labels: [("zone".to_owned(), "x".repeat(257))].into(), ..hello() };
        assert_eq!(field(&h), "hello.labels[\"zone\"]: 257 bytes; the limit is 256");
    }
}
