//! What the server sends after `Welcome`: assignments, cancellations, result acks.

use super::execute::{Job, execute};
use super::link::Link;
use super::{Held, LeaseKey, Runtime};
use crate::context::CancelSignal;
use crate::stats::Counters;
use crate::{CancelReason, TaskRef, WorkerEvent};
use braid_proto::v1 as pb;

/// `google.rpc.Code` values used in `ResultAck.code`.
const CODE_INVALID_ARGUMENT: i32 = 3;
const CODE_FAILED_PRECONDITION: i32 = 9;

impl Runtime {
    /// Spawns the task; it waits for a local slot if all are busy.
    pub(super) fn on_assignment(&mut self, assignment: pb::TaskAssignment, link: &Link) {
        let Some(session) = link.session() else { return };
        let task = TaskRef {
            task_id: assignment.task_id.clone(),
            attempt: assignment.attempt,
            lease_id: assignment.lease_id.clone(),
            task_type: assignment.task_type.clone(),
        };
        let key = LeaseKey::of(&task);
        let span = (task.task_id.as_str(), task.attempt, task.lease_id.as_str());
        if !session.is_open() {
            tracing::warn!(
                task_id = span.0,
                attempt = span.1,
                lease_id = span.2,
                "assignment after the stream was closed: not run; its lease will expire"
            );
            return;
        }
        let known = self.held.contains_key(&key)
            || self.unsent.iter().chain(self.unacked.iter()).any(|p| LeaseKey::of(&p.task) == key);
        if known {
            tracing::warn!(task_id = span.0, attempt = span.1, lease_id = span.2, "duplicate assignment ignored");
            return;
        }
        if assignment.lease_id.is_empty() {
            tracing::warn!(
                task_id = span.0,
                attempt = span.1,
                "assignment without a lease id: its result will be refused"
            );
        }
        for (old, held) in self.held.iter().filter(|(k, _)| k.task_id == key.task_id && k.attempt < key.attempt) {
            tracing::info!(
                task_id = span.0,
                old_attempt = old.attempt,
                attempt = span.1,
                "a newer attempt was assigned: cancelling the older one"
            );
            held.signal.cancel(CancelReason::Server(format!("superseded by attempt {}", key.attempt)));
        }
        let signal = CancelSignal::default();
        match &self.drain {
            Some(drain) if drain.cancelled => signal.cancel(CancelReason::Shutdown),
            Some(_) => {
                tracing::info!(task_id = span.0, attempt = span.1, "assignment received while draining: running it")
            }
            None => {
                tracing::debug!(task_id = span.0, attempt = span.1, task_type = %task.task_type, "assignment received")
            }
        }
        let job = Job {
            handler: self.config.handlers.get(&assignment.task_type).cloned(),
            assignment,
            task: task.clone(),
            signal: signal.clone(),
            slots: self.slots.clone(),
            config: self.config.clone(),
            shared: self.shared.clone(),
            worker_id: session.worker_id.clone(),
        };
        let handle = self.tasks.spawn(execute(job));
        self.ids.insert(handle.id(), key.clone());
        self.held.insert(key, Held { task, signal });
        self.update_in_flight();
    }

    /// Cancels the matching handler's token; it still reports a result.
    pub(super) fn on_cancel(&mut self, cancel: &pb::CancelTask) {
        let matches = |k: &LeaseKey| {
            k.task_id == cancel.task_id
                && (cancel.attempt == 0 || k.attempt == cancel.attempt)
                && (cancel.lease_id.is_empty() || k.lease_id == cancel.lease_id)
        };
        let mut found = false;
        for (key, held) in self.held.iter().filter(|(k, _)| matches(k)) {
            found = true;
            tracing::info!(task_id = %key.task_id, attempt = key.attempt, reason = %cancel.reason, "the server cancelled the task");
            held.signal.cancel(CancelReason::Server(cancel.reason.clone()));
        }
        if !found {
            tracing::debug!(task_id = %cancel.task_id, attempt = cancel.attempt, "CancelTask for a task not running here");
        }
    }

    /// Settles a sent result. A rejected result is logged and never sent again.
    pub(super) fn on_ack(&mut self, ack: pb::ResultAck) {
        let exact = self.unacked.iter().position(|p| {
            p.task.task_id == ack.task_id && p.task.attempt == ack.attempt && p.task.lease_id == ack.lease_id
        });
        let position = exact.or_else(|| {
            self.unacked.iter().position(|p| p.task.task_id == ack.task_id && p.task.attempt == ack.attempt)
        });
        let Some(position) = position else {
            tracing::debug!(task_id = %ack.task_id, attempt = ack.attempt, "ResultAck for no pending result");
            return;
        };
        let pending = self.unacked.remove(position);
        let task = pending.task;
        let counters = &self.shared.counters;
        if ack.accepted {
            Counters::bump(&counters.accepted);
            tracing::debug!(task_id = %task.task_id, attempt = task.attempt, "result accepted");
        } else {
            Counters::bump(&counters.rejected);
            let (id, attempt, lease, reason) = (&task.task_id, task.attempt, &task.lease_id, &ack.reason);
            match ack.code {
                CODE_FAILED_PRECONDITION => tracing::warn!(
                    task_id = %id, attempt, lease_id = %lease, %reason,
                    "result rejected: the lease is no longer current (stale); it is not sent again"
                ),
                CODE_INVALID_ARGUMENT => tracing::error!(
                    task_id = %id, attempt, lease_id = %lease, %reason,
                    "result rejected as malformed; it is not sent again"
                ),
                code => tracing::warn!(
                    task_id = %id, attempt, lease_id = %lease, code, %reason,
                    "result rejected; it is not sent again"
                ),
            }
        }
        self.config.emit(WorkerEvent::ResultAcked { task, accepted: ack.accepted, code: ack.code, reason: ack.reason });
    }
}
