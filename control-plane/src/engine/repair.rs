//! The repair loops' single passes: the reaper (expired leases) and the reconciler (queue restored from Postgres).

use super::complete::{Outcome, Verdict};
use super::{Engine, EngineError};
use crate::store::leases;
use futures::StreamExt;

/// Expired leases handled per reaper pass.
const REAP_BATCH: u64 = 500;
/// Expired leases recovered at once (each in its own transaction; the pool has 16 connections by default).
const REAP_PARALLEL: usize = 4;
/// Ready tasks republished per reconciler pass.
const RECONCILE_BATCH: u64 = 1000;

impl Engine {
    /// Recovers expired leases: each is re-checked by one conditional statement (state,
    /// attempt, lease id and expiry), so a result that lands first wins and two control
    /// planes never both recover one lease. Returns how many were recovered.
    pub async fn reap_once(&self) -> Result<usize, EngineError> {
        let db_now = self.db_now(self.now());
        let expired = leases::expired(self.store.conn(), REAP_BATCH, db_now).await?;
        // Several at once: each is its own conditional transaction (run, then task locked), so a
        // mass expiry (a fleet of workers lost at once) is not recovered one transaction at a time.
        let verdicts: Vec<_> = futures::stream::iter(expired)
            .map(|(tenant, key)| async move { (key, self.complete(&tenant, key, Outcome::LeaseExpired).await) })
            .buffer_unordered(REAP_PARALLEL)
            .collect()
            .await;
        let mut recovered = 0;
        for (key, verdict) in verdicts {
            match verdict {
                Ok(Verdict::Accepted) => recovered += 1,
                Ok(Verdict::Stale { .. }) => {}
                // One lease that cannot be recovered now does not hold up the others.
                Err(e) => {
                    tracing::warn!(task = %key.task_id, error = %e, "cannot recover expired lease; next pass retries")
                }
            }
        }
        Ok(recovered)
    }

    /// Publishes ready, due tasks that are not known to be in the queue: never published
    /// (a backoff that just ended) or published longer than the grace period ago (lost by
    /// Redis, or a crash between commit and publish). Returns how many were published.
    pub async fn reconcile_once(&self) -> Result<usize, EngineError> {
        let db_now = self.db_now(self.now());
        let txn = self.store.begin().await?;
        let due = leases::republish_candidates(
            &txn,
            self.store.backend(),
            self.settings.reconcile_grace,
            RECONCILE_BATCH,
            db_now,
        )
        .await?;
        txn.commit().await.map_err(crate::store::StoreError::from)?;
        let n = due.len();
        let mut by_tenant: std::collections::BTreeMap<String, Vec<(String, uuid::Uuid)>> = Default::default();
        for (tenant, task_type, id) in due {
            by_tenant.entry(tenant.0).or_default().push((task_type, id));
        }
        for (tenant, items) in by_tenant {
            self.publish(&crate::domain::records::Tenant(tenant), &items).await;
        }
        Ok(n)
    }
}
