//! Heartbeats: extending a stream's leases and naming the leases a worker holds that are no longer current.

use super::{Engine, EngineError};
use crate::domain::records::Tenant;
use crate::store::leases::{self, LeaseKey};

/// What a heartbeat found about the leases a worker listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatOutcome {
    /// Listed leases that are current and now bound to this stream (e.g. after a reconnect).
    pub kept: Vec<LeaseKey>,
    /// Listed leases that are no longer current: the worker should stop working on them.
    pub stale: Vec<LeaseKey>,
}

impl Engine {
    /// Extends every lease `worker_id` holds, and every lease it lists that is still current
    /// (binding those to this stream), by the lease TTL on the database clock.
    pub async fn heartbeat(
        &self,
        tenant: &Tenant,
        worker_id: &str,
        held: &[LeaseKey],
    ) -> Result<HeartbeatOutcome, EngineError> {
        let db_now = self.db_now(self.now());
        let ttl = self.settings.lease_ttl;
        leases::extend(self.store.conn(), tenant, worker_id, ttl, db_now).await?;
        let kept = leases::extend_listed(self.store.conn(), tenant, held, worker_id, ttl, db_now).await?;
        let stale = held.iter().filter(|k| !kept.contains(k)).copied().collect();
        Ok(HeartbeatOutcome { kept, stale })
    }

    /// Workers connected to any control plane and heard from within three lease TTLs.
    pub async fn connected_workers(
        &self,
        tenant: &Tenant,
    ) -> Result<Vec<crate::store::workers::WorkerRow>, EngineError> {
        let db_now = self.db_now(self.now());
        let fresh = self.settings.lease_ttl * 3;
        Ok(crate::store::workers::connected(self.store.conn(), tenant, fresh, 500, db_now).await?)
    }
}
