//! Timers and endings: lost leases, the drain and its deadlines, the exit decision, abort.

use super::link::Link;
use super::{Runtime, link_drain};
use crate::{CancelReason, WorkerError, WorkerEvent};
use std::time::Duration;
use tokio::time::Instant;

/// After the drain timeout cancels the handlers: how long they have left to return.
const CANCEL_GRACE: Duration = Duration::from_secs(5);
/// Once every result is sent during a drain: how long to wait for their acks.
const ACK_WAIT: Duration = Duration::from_secs(5);
/// After half-closing: how long to wait for the server to end the stream.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// A drain in progress.
pub(super) struct Drain {
    pub(super) reason: String,
    /// Handlers still running then are cancelled.
    deadline: Instant,
    /// Whatever is still held or unsent then is abandoned.
    hard_deadline: Instant,
    /// Whether `deadline` has passed (tokens cancelled).
    pub(super) cancelled: bool,
    /// When every held task had finished and every result was sent.
    settled_at: Option<Instant>,
}

impl Runtime {
    pub(super) fn begin_drain(&mut self, link: &Link, reason: &str) {
        if self.drain.is_some() {
            return;
        }
        let now = Instant::now();
        let timeout = self.config.drain_timeout;
        self.drain = Some(Drain {
            reason: reason.to_owned(),
            deadline: now + timeout,
            hard_deadline: now + timeout + CANCEL_GRACE,
            cancelled: false,
            settled_at: None,
        });
        tracing::info!(
            held = self.held.len(),
            ?timeout,
            reason,
            "draining: asking for no more work, finishing held tasks"
        );
        if let Some(session) = link.session() {
            session.send(link_drain(reason));
        }
        self.config.emit(WorkerEvent::Draining { reason: reason.to_owned() });
    }

    /// The next instant at which `on_timer` or `exit_check` has something to do.
    pub(super) fn next_timer(&self, link: &Link) -> Option<Instant> {
        let mut candidates = Vec::with_capacity(4);
        if link.session().is_none() && !self.held.is_empty() {
            candidates.extend(self.extended_at.map(|at| at + self.lease_ttl));
        }
        if let Some(drain) = &self.drain {
            if !drain.cancelled {
                candidates.push(drain.deadline);
            }
            candidates.push(drain.hard_deadline);
            candidates.extend(drain.settled_at.map(|at| at + ACK_WAIT));
        }
        candidates.extend(link.session().and_then(|s| s.close_by));
        candidates.into_iter().min()
    }

    /// Cancels handlers whose lease is probably gone, and handlers past the drain timeout.
    pub(super) fn on_timer(&mut self, link: &Link) {
        let now = Instant::now();
        let lease_gone = self.extended_at.is_some_and(|at| now >= at + self.lease_ttl);
        if link.session().is_none() && lease_gone && !self.held.is_empty() {
            tracing::warn!(
                held = self.held.len(),
                lease_ttl = ?self.lease_ttl,
                "no heartbeat reached the server for a whole lease TTL: the leases have probably expired; cancelling their handlers"
            );
            for held in self.held.values() {
                held.signal.cancel(CancelReason::LeaseLost);
            }
            self.extended_at = None;
        }
        if let Some(drain) = self.drain.as_mut().filter(|d| !d.cancelled && now >= d.deadline) {
            drain.cancelled = true;
            if !self.held.is_empty() {
                tracing::warn!(held = self.held.len(), "drain timeout passed: cancelling the tasks still running");
            }
            for held in self.held.values() {
                held.signal.cancel(CancelReason::Shutdown);
            }
        }
    }

    /// During a drain: whether the worker is done. It is once nothing is held or unsent and the
    /// acks came (or `ACK_WAIT` passed) and the stream is closed, or at the hard deadline.
    pub(super) fn exit_check(&mut self, link: &mut Link) -> Option<Result<(), WorkerError>> {
        if self.closed {
            return Some(Ok(()));
        }
        let drain = self.drain.as_mut()?;
        let now = Instant::now();
        if now >= drain.hard_deadline {
            let results = self.unsent.len() + self.unacked.len();
            if !self.held.is_empty() || results > 0 {
                tracing::error!(
                    held = self.held.len(),
                    results,
                    "drain deadline passed: abandoning tasks and results (their leases will expire)"
                );
            }
            self.tasks.abort_all();
            return Some(Ok(()));
        }
        if !self.held.is_empty() || !self.unsent.is_empty() {
            drain.settled_at = None;
            return None;
        }
        let Some(session) = link.session_mut() else {
            // Nothing to deliver and no stream: done.
            return Some(Ok(()));
        };
        if session.is_open() {
            let settled_at = *drain.settled_at.get_or_insert(now);
            let waited = now >= settled_at + ACK_WAIT;
            if self.unacked.is_empty() || waited {
                if !self.unacked.is_empty() {
                    tracing::warn!(unacked = self.unacked.len(), "no ack for some results; closing anyway");
                }
                tracing::info!("drained: closing the stream");
                session.half_close(CLOSE_WAIT);
            }
            return None;
        }
        if session.close_by.is_some_and(|at| now >= at) {
            tracing::warn!("the server did not end the stream after the drain; leaving");
            return Some(Ok(()));
        }
        None
    }

    /// Cancels every handler and abandons them.
    pub(super) fn abort(&mut self) {
        if !self.held.is_empty() {
            tracing::warn!(held = self.held.len(), "stopping at once: abandoning running tasks");
        }
        for held in self.held.values() {
            held.signal.cancel(CancelReason::Shutdown);
        }
        self.tasks.abort_all();
    }
}
