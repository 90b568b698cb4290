//! The repair loops' single passes: the reaper (expired leases) and the reconciler (queue restored from Postgres).

use super::complete::{Completion, Outcome, Verdict};
use super::{Engine, EngineError};
use crate::domain::flow::Priority;
use crate::domain::records::Tenant;
use crate::store::leases;
use futures::StreamExt;
use std::collections::BTreeMap;

/// Expired leases handled per reaper pass.
const REAP_BATCH: u64 = 500;
/// Expired leases of one tenant recovered in one transaction.
const REAP_CHUNK: usize = 100;
/// Transactions of recovery at once.
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
        // In batches per tenant (one transaction each), several at once, so a mass expiry (a
        // fleet of workers lost at once) is not recovered one transaction at a time.
        let mut by_tenant: BTreeMap<Tenant, Vec<Completion>> = BTreeMap::new();
        for (tenant, key) in expired {
            by_tenant.entry(tenant).or_default().push(Completion { key, outcome: Outcome::LeaseExpired });
        }
        let batches: Vec<(Tenant, Vec<Completion>)> = by_tenant
            .into_iter()
            .flat_map(|(tenant, items)| {
                items.chunks(REAP_CHUNK).map(|c| (tenant.clone(), c.to_vec())).collect::<Vec<_>>()
            })
            .collect();
        let verdicts: Vec<_> = futures::stream::iter(batches)
            .map(|(tenant, items)| async move {
                let keys: Vec<_> = items.iter().map(|c| c.key).collect();
                keys.into_iter().zip(self.complete_many(&tenant, items).await).collect::<Vec<_>>()
            })
            .buffer_unordered(REAP_PARALLEL)
            .collect()
            .await;
        let mut recovered = 0;
        for (key, verdict) in verdicts.into_iter().flatten() {
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
        self.metrics.engine().republished(n as u64);
        // A task that has waited longer than the aging threshold is offered on its type's high
        // lane, ahead of fresh work: low priority delays work, it never starves it.
        let now = self.now();
        let aging = chrono::Duration::from_std(self.settings.priority_aging).unwrap_or(chrono::Duration::MAX);
        let mut by_tenant: std::collections::BTreeMap<String, Vec<(String, uuid::Uuid)>> = Default::default();
        for r in due {
            let priority = if now - r.ready_since > aging { Priority::High } else { r.priority };
            by_tenant.entry(r.tenant.0).or_default().push((crate::queue::lane(&r.task_type, priority), r.id));
        }
        for (tenant, items) in by_tenant {
            self.publish(&crate::domain::records::Tenant(tenant), &items).await;
        }
        let started = self.admit_queued_once().await?;
        if started > 0 {
            tracing::info!(started, "queued runs admitted by the reconciler");
        }
        Ok(n)
    }
}
