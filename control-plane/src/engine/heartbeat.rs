//! Heartbeats: extending a stream's leases and naming the leases a worker holds that are no longer current.

use super::{Engine, EngineError};
use crate::domain::records::Tenant;
use crate::store::leases::{self, LeaseKey};

impl Engine {
    /// Extends every lease `worker_id` holds by the lease TTL (database clock) and returns,
    /// among `held` (what the worker believes it holds), those that are no longer current:
    /// the worker should stop working on them.
    pub async fn heartbeat(
        &self,
        tenant: &Tenant,
        worker_id: &str,
        held: &[LeaseKey],
    ) -> Result<Vec<LeaseKey>, EngineError> {
        let db_now = self.db_now(self.now());
        leases::extend(self.store.conn(), tenant, worker_id, self.settings.lease_ttl, db_now).await?;
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<_> = held.iter().map(|k| k.task_id).collect();
        let rows = leases::current(self.store.conn(), tenant, &ids).await?;
        Ok(held
            .iter()
            .filter(|k| {
                !rows.iter().any(|t| {
                    t.id == k.task_id
                        && t.state == "leased"
                        && t.lease_id == Some(k.lease_id)
                        && u32::try_from(t.attempt).ok() == Some(k.attempt)
                })
            })
            .copied()
            .collect())
    }
}

impl Engine {
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
