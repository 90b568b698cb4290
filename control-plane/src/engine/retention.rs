//! Retention: deleting finished runs older than their workflow's retention (or the default), in bounded batches.
//!
//! Cutoffs come from the engine's clock (`now - retention`), not PostgreSQL's: retention is
//! minutes to years, so clock drift between control planes does not matter, and the injected
//! clock lets tests (and the simulator) age runs without waiting. Several control planes may run
//! it at once: each batch locks its runs `SKIP LOCKED`, so they share the work.

use super::{Engine, EngineError};
use crate::store::StoreError;
use crate::store::retention::{self, Deleted, Scope, WorkflowRetention};
use chrono::{DateTime, Utc};
use std::time::Duration;
use uuid::Uuid;

/// What one retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub runs: u64,
    pub tasks: u64,
    pub attempts: u64,
    pub events: u64,
}

impl RetentionReport {
    fn add(&mut self, d: Deleted) {
        self.runs += d.runs;
        self.tasks += d.tasks;
        self.attempts += d.attempts;
        self.events += d.events;
    }
}

/// One group of runs sharing a cutoff, and how far this pass got in it.
struct Lane<'a> {
    scope: Scope<'a>,
    cutoff: DateTime<Utc>,
    after: Option<Uuid>,
    done: bool,
}

fn cutoff(now: DateTime<Utc>, retention: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(retention)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl Engine {
    /// One retention pass: deletes finished runs older than their workflow's `settings.retention`
    /// (its latest version's), or than the default for workflows that set none, with their tasks,
    /// attempts, events and gates, and then (after each batch commits) the objects of their large
    /// payloads. A run whose dead letter waits for a redrive is kept.
    /// Does at most `retention_batches` transactions of `retention_batch_size` runs, taking
    /// one batch of each workflow in turn, so that a backlog in one does not starve the others.
    pub async fn retention_once(&self) -> Result<RetentionReport, EngineError> {
        let now = self.now();
        let own: Vec<WorkflowRetention> = retention::workflow_retentions(self.store.conn()).await?;
        let mut lanes: Vec<Lane<'_>> = own
            .iter()
            .map(|w| Lane {
                scope: Scope::Workflow { tenant: w.tenant.as_str(), workflow_name: &w.workflow_name },
                cutoff: cutoff(now, w.retention),
                after: None,
                done: false,
            })
            .collect();
        lanes.push(Lane {
            scope: Scope::Except(&own),
            cutoff: cutoff(now, self.settings.retention),
            after: None,
            done: false,
        });
        let size = u64::from(self.settings.retention_batch_size.max(1));
        let mut budget = self.settings.retention_batches;
        let mut report = RetentionReport::default();
        while budget > 0 && lanes.iter().any(|l| !l.done) {
            for lane in lanes.iter_mut().filter(|l| !l.done) {
                if budget == 0 {
                    break;
                }
                budget -= 1;
                let txn = self.store.begin().await?;
                let batch =
                    retention::delete_batch(&txn, self.store.backend(), lane.scope, lane.cutoff, lane.after, size)
                        .await?;
                txn.commit().await.map_err(StoreError::from)?;
                // The rows are gone: now their large payloads (a failure is tried again later).
                if !batch.runs.is_empty() {
                    self.delete_run_objects(batch.runs).await;
                }
                report.add(batch.deleted);
                lane.after = batch.last;
                lane.done = batch.taken < size;
            }
        }
        if !self.undeleted.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
            self.delete_run_objects(Vec::new()).await;
        }
        Ok(report)
    }
}
