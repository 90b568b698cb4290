//! Timing of the lease protocol and the background loops (reaper, reconciler, retention), quotas and payload limits, with defaults.

use std::time::Duration;

/// How leases, heartbeats and the repair loops are timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecSettings {
    /// How long a lease lasts without a heartbeat.
    pub lease_ttl: Duration,
    /// How often workers are told to heartbeat (a third of the TTL by default).
    pub heartbeat_interval: Duration,
    /// How often the reaper looks for expired leases.
    pub reaper_interval: Duration,
    /// How often the reconciler publishes due tasks that are not in the queue.
    pub reconcile_interval: Duration,
    /// How long a published, ready task may wait before it is published again.
    pub reconcile_grace: Duration,
    /// How long one dispatch read waits on the queue before looking again.
    pub dispatch_block: Duration,
    /// A ready task that has waited this long is offered ahead of fresh work (high lane).
    pub priority_aging: Duration,
    /// How long finished runs are kept when their workflow sets no `settings.retention`.
    pub retention: Duration,
    /// How often the retention pass looks for finished runs past their retention.
    pub retention_interval: Duration,
    /// Runs deleted per retention transaction.
    pub retention_batch_size: u32,
    /// Most transactions one retention pass makes (the rest waits for the next pass).
    pub retention_batches: u32,
    /// Every tenant's quotas unless its own override them.
    pub quotas: crate::domain::quota::Quotas,
    /// When run inputs and task outputs go to object storage, and how large they may be.
    pub payloads: crate::domain::payload_ref::PayloadLimits,
}

impl Default for ExecSettings {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(10),
            reaper_interval: Duration::from_secs(1),
            reconcile_interval: Duration::from_millis(250),
            reconcile_grace: Duration::from_secs(10),
            dispatch_block: Duration::from_millis(500),
            priority_aging: Duration::from_secs(60),
            retention: Duration::from_secs(30 * 24 * 60 * 60),
            retention_interval: Duration::from_secs(60),
            retention_batch_size: 500,
            retention_batches: 20,
            quotas: crate::domain::quota::Quotas::default(),
            payloads: crate::domain::payload_ref::PayloadLimits::default(),
        }
    }
}

impl ExecSettings {
    /// Settings with this lease TTL; the heartbeat interval follows (a third of it).
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self.heartbeat_interval = ttl / 3;
        self
    }
}
