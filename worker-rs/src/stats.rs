//! Counters of what a worker did, readable through `WorkerHandle::stats`.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a worker's counters since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Handlers started.
    pub started: u64,
    /// Results produced with an output (handler returned `Ok`).
    pub succeeded: u64,
    /// Results produced with an error (handler error or panic, bad input, or a task cancelled
    /// before it started).
    pub failed: u64,
    /// Results the server accepted.
    pub accepted: u64,
    /// Results the server rejected (stale lease, malformed); never sent again.
    pub rejected: u64,
    /// Streams established (`Welcome` received).
    pub connects: u64,
    /// Leases held now: tasks running or waiting for a slot.
    pub in_flight: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) started: AtomicU64,
    pub(crate) succeeded: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    /// The Prometheus families, served on `/metrics` when `metrics_listen` is set.
    pub(crate) metrics: crate::metrics::WorkerMetrics,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> WorkerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WorkerStats {
            started: get(&self.started),
            succeeded: get(&self.succeeded),
            failed: get(&self.failed),
            accepted: get(&self.accepted),
            rejected: get(&self.rejected),
            connects: get(&self.connects),
            in_flight: get(&self.in_flight),
        }
    }
}
