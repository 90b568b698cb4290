//! Cancellation: a run's unfinished tasks are cancelled and the workers holding its leases are told.

use super::admission::{Admission, EndedRun};
use super::session::Outbound;
use super::{Engine, EngineError};
use crate::domain::records::{RunDetail, Tenant};
use crate::domain::state::{RunState, TaskState};
use crate::store::events::NewEvent;
use crate::store::leases::{self, LeaseKey};
use crate::store::{StoreError, events, progress};
use serde_json::json;
use uuid::Uuid;

/// A lease that was current when its run was cancelled: its worker should stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedLease {
    pub worker_id: String,
    pub key: LeaseKey,
}

/// What CancelRun did.
#[derive(Debug, Clone)]
pub struct CancelOutcome {
    pub run: RunDetail,
    /// Leases to tell their workers about (CancelTask).
    pub revoked: Vec<RevokedLease>,
}

impl Engine {
    /// Cancels a run: pending, ready and leased tasks become cancelled and the run ends
    /// `cancelled`. Cancelling a finished run changes nothing and is not an error.
    pub async fn cancel_run(&self, tenant: &Tenant, run_id: Uuid, reason: &str) -> Result<CancelOutcome, EngineError> {
        let now = self.now();
        let db_now = self.db_now(now);
        let txn = self.store.begin().await?;
        let run = progress::lock_run(&txn, self.store.backend(), tenant, run_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("run {run_id} not found")))?;
        let state: RunState = run.state.parse().map_err(crate::store::corrupt)?;
        let mut revoked = Vec::new();
        let mut admitted = Admission::default();
        if !state.is_terminal() {
            let all = progress::tasks_of_run(&txn, tenant, run_id).await?;
            let open: Vec<_> =
                all.iter().filter(|t| matches!(t.state.as_str(), "pending" | "ready" | "leased")).collect();
            for t in open.iter().filter(|t| t.state == TaskState::Leased.as_str()) {
                if let (Some(worker_id), Some(lease_id), Ok(attempt)) =
                    (t.worker_id.clone(), t.lease_id, u32::try_from(t.attempt))
                {
                    revoked.push(RevokedLease { worker_id, key: LeaseKey { task_id: t.id, attempt, lease_id } });
                }
            }
            for lease in &revoked {
                leases::finish_attempt(&txn, tenant, lease.key, "cancelled", None, None, db_now).await?;
            }
            let ids: Vec<Uuid> = open.iter().map(|t| t.id).collect();
            progress::set_task_state(
                &txn,
                &ids,
                &[TaskState::Pending, TaskState::Ready, TaskState::Leased],
                TaskState::Cancelled,
                db_now,
            )
            .await?;
            let reason = if reason.is_empty() { "cancelled by request".to_owned() } else { reason.to_owned() };
            progress::set_run_state(
                &txn,
                tenant,
                run_id,
                &[RunState::Queued, RunState::Running],
                RunState::Cancelled,
                None,
                Some(reason.clone()),
                db_now,
            )
            .await?;
            let mut log: Vec<NewEvent> =
                open.iter().map(|t| NewEvent::task("task_cancelled", &t.name, None, json!({}))).collect();
            log.push(NewEvent::run("run_cancelled", json!({"reason": reason.clone()})));
            events::append(&txn, tenant, run_id, &log, now).await?;
            let ended = EndedRun {
                id: run.id,
                workflow_name: run.workflow_name.clone(),
                gated: run.gated,
                schedule_id: run.schedule_id,
            };
            if ended.matters() {
                admitted = self.release_slots(&txn, tenant, &[ended], now).await?;
            }
            txn.commit().await.map_err(StoreError::from)?;
            let m = self.metrics.engine();
            m.run_finished(&run.workflow_name, RunState::Cancelled.as_str());
            for t in &open {
                m.task_finished(&t.task_type, TaskState::Cancelled.as_str());
            }
            // Workers of this control plane holding its leases are told at once; others find
            // out when their result is answered as stale.
            for lease in &revoked {
                let why = format!("run {run_id} was cancelled: {reason}");
                self.registry().try_send(&lease.worker_id, Outbound::Cancel { key: lease.key, reason: why });
            }
        } else {
            txn.commit().await.map_err(StoreError::from)?;
        }
        self.publish(tenant, &admitted.ready).await;
        Box::pin(self.evict(tenant, admitted.evict)).await;
        let run = self.get_run(tenant, run_id).await?;
        Ok(CancelOutcome { run, revoked })
    }
}
