//! What the bench's workers saw: handler starts (with enqueue-to-start latency), accepted results, connections.

use braid_worker::{TaskContext, TaskOutcome, WorkerEvent};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, watch};

/// The task name of a DAG's last task: its accepted result completes the run.
pub const SINK: &str = "sink";

/// Nanoseconds since the UNIX epoch, now (the clock of `t_ns` in run inputs).
pub fn epoch_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// What the current phase waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// This many accepted results.
    Acked(u64),
    /// This many DAG sinks' accepted results.
    Sinks(u64),
}

/// Counters of the current phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub started: u64,
    pub acked: u64,
    pub sinks: u64,
    pub rejected: u64,
    pub failed: u64,
    pub last_ack: Option<Instant>,
    pub last_sink: Option<Instant>,
}

impl Counts {
    /// The instant the wanted count was reached, if it was.
    pub fn reached(&self, want: Want) -> Option<Instant> {
        match want {
            Want::Acked(n) if self.acked >= n => self.last_ack,
            Want::Sinks(n) if self.sinks >= n => self.last_sink,
            Want::Acked(_) | Want::Sinks(_) => None,
        }
    }

    /// The count `want` is about.
    pub fn done(&self, want: Want) -> u64 {
        match want {
            Want::Acked(_) => self.acked,
            Want::Sinks(_) => self.sinks,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    counts: Counts,
    want: Option<Want>,
    /// Tasks started in this phase and not yet acknowledged: an ack counts only for those, so
    /// a late ack of an earlier phase never counts in this one.
    open_tasks: HashSet<String>,
    /// Sink tasks started and not yet acknowledged.
    sink_tasks: HashSet<String>,
    /// (enqueue instant in ns since the epoch, start − enqueue in ns) of tasks whose input had `t_ns`.
    latencies: Vec<(u64, u64)>,
}

/// Shared by the workers' handlers and event hooks and the bench driving them. Cheap per event:
/// one uncontended lock, and a wake-up only when the wanted count is reached.
#[derive(Debug)]
pub struct Recorder {
    state: Mutex<State>,
    reached: Notify,
    connected: watch::Sender<u64>,
    disconnects: Mutex<Vec<String>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            reached: Notify::new(),
            connected: watch::Sender::new(0),
            disconnects: Mutex::default(),
        }
    }
}

impl Recorder {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A handler started: records its latency (when the input carries `t_ns`) and remembers sinks.
    pub fn started(&self, input: &Value, ctx: &TaskContext) {
        let now = epoch_ns();
        let t = input.get("t_ns").and_then(Value::as_u64);
        let mut s = self.lock();
        s.counts.started += 1;
        if let Some(t) = t {
            s.latencies.push((t, now.saturating_sub(t)));
        }
        s.open_tasks.insert(ctx.task_id().to_owned());
        if ctx.task_name() == SINK {
            s.sink_tasks.insert(ctx.task_id().to_owned());
        }
    }

    /// The workers' `on_event` hook.
    pub fn event(&self, e: &WorkerEvent) {
        match e {
            WorkerEvent::Connected { .. } => self.connected.send_modify(|n| *n += 1),
            WorkerEvent::Disconnected { error } => {
                self.disconnects.lock().unwrap_or_else(|p| p.into_inner()).push(error.clone());
            }
            WorkerEvent::ResultAcked { task, accepted, .. } => {
                let now = Instant::now();
                let mut s = self.lock();
                if !*accepted {
                    s.counts.rejected += 1;
                    return;
                }
                if !s.open_tasks.remove(&task.task_id) {
                    return;
                }
                s.counts.acked += 1;
                s.counts.last_ack = Some(now);
                if !s.sink_tasks.is_empty() && s.sink_tasks.remove(&task.task_id) {
                    s.counts.sinks += 1;
                    s.counts.last_sink = Some(now);
                }
                let reached = s.want.is_some_and(|w| s.counts.reached(w).is_some());
                drop(s);
                if reached {
                    self.reached.notify_one();
                }
            }
            WorkerEvent::TaskFinished { outcome: TaskOutcome::Failed(_), .. } => self.lock().counts.failed += 1,
            _ => {}
        }
    }

    /// Starts a new phase: counters, latencies and sinks cleared; `want` is what it waits for.
    pub fn reset(&self, want: Want) {
        let mut s = self.lock();
        *s = State { want: Some(want), ..State::default() };
    }

    /// Changes what the current phase waits for, counters kept.
    pub fn want(&self, want: Want) {
        let mut s = self.lock();
        s.want = Some(want);
        let reached = s.counts.reached(want).is_some();
        drop(s);
        if reached {
            self.reached.notify_one();
        }
    }

    pub fn counts(&self) -> Counts {
        self.lock().counts
    }

    /// Resolves after an accepted result that may have reached the wanted count (check `counts()`).
    pub async fn wake(&self) {
        self.reached.notified().await;
    }

    /// The latencies recorded in this phase, taken out.
    pub fn take_latencies(&self) -> Vec<(u64, u64)> {
        std::mem::take(&mut self.lock().latencies)
    }

    /// Streams established so far (reconnects included).
    pub fn connections(&self) -> watch::Receiver<u64> {
        self.connected.subscribe()
    }

    /// Why streams broke, taken out.
    pub fn take_disconnects(&self) -> Vec<String> {
        std::mem::take(&mut *self.disconnects.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
