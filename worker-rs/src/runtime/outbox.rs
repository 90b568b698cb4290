//! What the worker sends after `Hello`: heartbeats listing held leases, and results.

use super::execute::Finished;
use super::link::{Link, Session};
use super::{LeaseKey, Pending, Runtime};
use crate::stats::Counters;
use crate::{TaskError, TaskOutcome, WorkerEvent};
use braid_proto::v1 as pb;
use braid_proto::v1::connect_request::Message as Out;
use braid_proto::v1::task_result::Outcome;
use tokio::task::{Id, JoinError};
use tokio::time::Instant;

/// Largest task output any control plane accepts, in bytes (32 MiB, the most its `--payload-max`
/// allows): a larger one fails the task here, without retries. A control plane configured lower
/// judges the output itself (the same `invalid_output` failure).
pub const MAX_OUTPUT_BYTES: usize = 32 * 1024 * 1024;

impl Runtime {
    /// Lists every lease held (running, waiting for a slot, or with a result not yet sent on
    /// this stream); sending it on a live stream extends them all.
    pub(super) fn heartbeat(&mut self, session: &Session) {
        let leases = self
            .held
            .keys()
            .cloned()
            .chain(self.unsent.iter().map(|p| LeaseKey::of(&p.task)))
            .map(|k| k.to_proto())
            .collect();
        if session.send(Out::Heartbeat(pb::Heartbeat { leases })) {
            self.shared.counters.metrics.heartbeat();
            self.extended_at = Some(Instant::now());
        }
    }

    /// Sends every unsent result, oldest first; they wait for their acks in `unacked`.
    pub(super) fn flush(&mut self, session: &Session) {
        while let Some(pending) = self.unsent.pop_front() {
            if session.send(Out::Result(pending.result.clone())) {
                self.unacked.push(pending);
            } else {
                self.unsent.push_front(pending);
                break;
            }
        }
    }

    /// A task ended: free its lease entry, queue its result and send it if connected.
    pub(super) fn on_joined(&mut self, joined: Result<(Id, Finished), JoinError>, link: &Link) {
        let (id, finished) = match joined {
            Ok(done) => done,
            Err(error) => {
                let failure = TaskError::retryable(format!("the task runner failed: {error}")).with_type("internal");
                (error.id(), Finished { result: Err(failure), started: false })
            }
        };
        let Some(held) = self.ids.remove(&id).and_then(|key| self.held.remove(&key)) else { return };
        self.update_in_flight();
        let task = held.task;
        let counters = &self.shared.counters;
        // An output the server would refuse (or whose message would not fit) is reported as the
        // failure the server would make of it, so it never travels.
        let result = finished.result.and_then(|output_json| {
            if output_json.len() > MAX_OUTPUT_BYTES {
                let message = format!("output_json is {} bytes; the limit is {MAX_OUTPUT_BYTES}", output_json.len());
                Err(TaskError::fatal(message).with_type("invalid_output"))
            } else {
                Ok(output_json)
            }
        });
        let (outcome, wire) = match result {
            Ok(output_json) => {
                Counters::bump(&counters.succeeded);
                counters.metrics.task(&task.task_type, "succeeded");
                tracing::debug!(task_id = %task.task_id, attempt = task.attempt, "task succeeded");
                (TaskOutcome::Succeeded, Outcome::OutputJson(output_json))
            }
            Err(error) => {
                Counters::bump(&counters.failed);
                counters.metrics.task(&task.task_type, "failed");
                tracing::info!(task_id = %task.task_id, attempt = task.attempt, %error, "task failed");
                let wire = Outcome::Error(error.to_proto());
                (TaskOutcome::Failed(error), wire)
            }
        };
        let result = pb::TaskResult {
            task_id: task.task_id.clone(),
            attempt: task.attempt,
            lease_id: task.lease_id.clone(),
            outcome: Some(wire),
        };
        self.config.emit(WorkerEvent::TaskFinished { task: task.clone(), outcome, started: finished.started });
        self.unsent.push_back(Pending { task, result });
        if let Some(session) = link.session() {
            self.flush(session);
        }
    }
}
