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
    /// Extends, by the lease TTL on the database clock, the leases the worker lists (`held`) that
    /// are still current, binding them to this stream, and those this stream sent it and has not
    /// heard answered (`in_flight`: an assignment may cross the worker's heartbeat). Nothing else:
    /// a lease taken for this stream that never reached the worker (its commit's answer was lost
    /// with the database connection) expires, and the reaper gives the task another attempt.
    pub async fn heartbeat(
        &self,
        tenant: &Tenant,
        worker_id: &str,
        held: &[LeaseKey],
        in_flight: &[LeaseKey],
    ) -> Result<HeartbeatOutcome, EngineError> {
        let db_now = self.db_now(self.now());
        let ttl = self.settings.lease_ttl;
        let mut keys: Vec<LeaseKey> = held.to_vec();
        keys.extend(in_flight.iter().filter(|k| !held.contains(k)));
        let extended = leases::extend_listed(self.store.conn(), tenant, &keys, worker_id, ttl, db_now).await?;
        let kept: Vec<LeaseKey> = held.iter().filter(|k| extended.contains(k)).copied().collect();
        let stale = held.iter().filter(|k| !kept.contains(k)).copied().collect();
        Ok(HeartbeatOutcome { kept, stale })
    }

    /// Workers connected to any control plane and heard from within three lease TTLs (at most 500).
    pub async fn connected_workers(
        &self,
        tenant: &Tenant,
    ) -> Result<Vec<crate::store::workers::WorkerRow>, EngineError> {
        let db_now = self.db_now(self.now());
        Ok(crate::store::workers::connected(self.store.conn(), tenant, self.worker_freshness(), 500, db_now).await?)
    }

    /// How many workers `connected_workers` would list, without the cap.
    pub async fn connected_worker_count(&self, tenant: &Tenant) -> Result<u64, EngineError> {
        let db_now = self.db_now(self.now());
        Ok(crate::store::workers::count_connected(self.store.conn(), tenant, self.worker_freshness(), db_now).await?)
    }

    /// A worker counts as connected while heard from within three lease TTLs.
    fn worker_freshness(&self) -> std::time::Duration {
        self.settings.lease_ttl * 3
    }
}
