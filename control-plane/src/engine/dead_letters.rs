//! Dead letters: listing tasks that ran out of attempts, redriving them into fresh attempts, purging them.

use super::{Engine, EngineError, page};
use crate::domain::records::{Page, Tenant};
use crate::domain::retry::RetryPolicy;
use crate::domain::state::{RunState, TaskState};
use crate::store::dead_letters::{self, DeadLetter, DeadLetterFilter};
use crate::store::entity::task;
use crate::store::events::NewEvent;
use crate::store::{StoreError, corrupt, events, progress};
use serde_json::json;
use std::collections::HashSet;
use uuid::Uuid;

/// Most dead letters one redrive request may revive.
pub const MAX_REDRIVE: u64 = 1000;
/// Dead letters deleted per statement when purging by filter.
const PURGE_BATCH: u64 = 1000;
/// Most statements one purge by filter makes (a larger purge is repeated).
const PURGE_BATCHES: u32 = 100;

/// Which dead letters a purge deletes: named ones, or every one matching a filter.
#[derive(Debug, Clone, PartialEq)]
pub enum PurgeSelection {
    Ids(Vec<Uuid>),
    /// The default filter matches every dead letter.
    Filter(DeadLetterFilter),
}

impl Engine {
    /// Dead letters not yet redriven, newest first.
    pub async fn list_dead_letters(
        &self,
        tenant: &Tenant,
        filter: &DeadLetterFilter,
        page_size: u32,
        page_token: &str,
    ) -> Result<Page<DeadLetter, String>, EngineError> {
        let after: Option<Uuid> = page::decode(page_token)?;
        let limit = page::size(page_size);
        let items = dead_letters::list(self.store.conn(), tenant, filter, None, after, limit + 1).await?;
        Ok(page::split(items, limit, |d| page::encode(&d.id)))
    }

    /// Redrives the dead letters named by `ids`, or all matching `filter` when `ids` is empty:
    /// each task becomes ready with a fresh budget of attempts (attempt numbers keep rising),
    /// the tasks skipped because of it become pending again, and its run resumes.
    /// Returns the redriven task ids.
    pub async fn redrive(
        &self,
        tenant: &Tenant,
        ids: &[Uuid],
        filter: &DeadLetterFilter,
    ) -> Result<Vec<Uuid>, EngineError> {
        let chosen = if ids.is_empty() {
            dead_letters::list(self.store.conn(), tenant, filter, None, None, MAX_REDRIVE).await?
        } else {
            dead_letters::list(self.store.conn(), tenant, &DeadLetterFilter::default(), Some(ids), None, MAX_REDRIVE)
                .await?
        };
        if !ids.is_empty() && chosen.len() != ids.len() {
            let found: HashSet<Uuid> = chosen.iter().map(|d| d.id).collect();
            let missing: Vec<String> = ids.iter().filter(|i| !found.contains(i)).map(ToString::to_string).collect();
            return Err(EngineError::NotFound(format!("no dead letter (or already redriven): {}", missing.join(", "))));
        }
        if !ids.is_empty() {
            // Named explicitly: refuse rather than skip what cannot be redriven.
            let runs = crate::store::runs::get_many(
                self.store.conn(),
                tenant,
                &chosen.iter().map(|d| d.run_id).collect::<Vec<_>>(),
            )
            .await?;
            if let Some(r) = runs.iter().find(|r| r.run.state == RunState::Cancelled) {
                return Err(EngineError::FailedPrecondition(format!(
                    "run {} was cancelled; its dead letters cannot be redriven",
                    r.run.id
                )));
            }
        }
        let mut revived = Vec::new();
        for d in chosen {
            if self.redrive_one(tenant, &d).await? {
                revived.push(d.task_id);
            }
        }
        Ok(revived)
    }

    /// Deletes dead letters not yet redriven (their tasks stay failed); their runs become subject
    /// to retention. Named ids must all exist in the tenant and be waiting, or nothing is purged.
    /// A filter purges in batches, at most `PURGE_BATCH * PURGE_BATCHES` per call.
    /// Returns how many were deleted.
    pub async fn purge_dead_letters(&self, tenant: &Tenant, selection: &PurgeSelection) -> Result<u64, EngineError> {
        let c = self.store.conn();
        match selection {
            PurgeSelection::Ids(ids) if ids.is_empty() => {
                Err(EngineError::invalid("ids", "name at least one dead letter, or give a filter"))
            }
            PurgeSelection::Ids(ids) => {
                let limit = u64::try_from(ids.len()).unwrap_or(u64::MAX);
                let found = dead_letters::list(c, tenant, &DeadLetterFilter::default(), Some(ids), None, limit).await?;
                if found.len() != ids.iter().collect::<HashSet<_>>().len() {
                    let found: HashSet<Uuid> = found.iter().map(|d| d.id).collect();
                    let missing: Vec<String> =
                        ids.iter().filter(|i| !found.contains(i)).map(ToString::to_string).collect();
                    return Err(EngineError::NotFound(format!(
                        "no dead letter (or already redriven): {}",
                        missing.join(", ")
                    )));
                }
                Ok(dead_letters::purge(c, tenant, ids).await?)
            }
            PurgeSelection::Filter(filter) => {
                let mut purged = 0;
                for _ in 0..PURGE_BATCHES {
                    let batch = dead_letters::list(c, tenant, filter, None, None, PURGE_BATCH).await?;
                    let ids: Vec<Uuid> = batch.iter().map(|d| d.id).collect();
                    purged += dead_letters::purge(c, tenant, &ids).await?;
                    if (ids.len() as u64) < PURGE_BATCH {
                        break;
                    }
                }
                Ok(purged)
            }
        }
    }

    async fn redrive_one(&self, tenant: &Tenant, d: &DeadLetter) -> Result<bool, EngineError> {
        let now = self.now();
        let db_now = self.db_now(now);
        let txn = self.store.begin().await?;
        let run = progress::lock_run(&txn, self.store.backend(), tenant, d.run_id)
            .await?
            .ok_or_else(|| corrupt(format!("dead letter {} has no run", d.id)))?;
        match run.state.parse::<RunState>().map_err(corrupt)? {
            // A cancelled run stays cancelled: its dead letters are left as they are.
            RunState::Cancelled => return Ok(false),
            RunState::Queued | RunState::Running | RunState::Failed | RunState::Succeeded => {}
        }
        let all = progress::tasks_of_run(&txn, tenant, d.run_id).await?;
        let t = all.iter().find(|t| t.id == d.task_id).ok_or_else(|| corrupt("dead-lettered task vanished"))?;
        let policy: RetryPolicy = serde_json::from_str(&t.retry_policy).map_err(corrupt)?;
        let budget = t.attempt.saturating_add(i32::try_from(policy.max_attempts).unwrap_or(i32::MAX));
        if !progress::revive_failed(&txn, t.id, budget, db_now).await? {
            return Ok(false);
        }
        let mut log = vec![NewEvent::task("task_redriven", &t.name, None, json!({"dead_letter": d.id}))];
        // Skipped tasks no longer downstream of a failed task can run again.
        let still_failed: HashSet<&str> = all
            .iter()
            .filter(|x| x.state == TaskState::Failed.as_str() && x.id != t.id)
            .map(|x| x.name.as_str())
            .collect();
        let blocked = downstream(&all, &still_failed)?;
        for s in all.iter().filter(|x| x.state == TaskState::Skipped.as_str() && !blocked.contains(x.name.as_str())) {
            let deps: Vec<String> = serde_json::from_str(&s.depends_on).map_err(corrupt)?;
            let succeeded = |n: &String| all.iter().any(|x| x.name == *n && x.state == TaskState::Succeeded.as_str());
            let pending = i32::try_from(deps.iter().filter(|n| !succeeded(n)).count()).unwrap_or(i32::MAX);
            progress::set_pending_deps(&txn, s.id, pending).await?;
            progress::set_task_state(&txn, &[s.id], &[TaskState::Skipped], TaskState::Pending, db_now).await?;
            log.push(NewEvent::task("task_pending", &s.name, None, json!({"after_redrive_of": t.name})));
        }
        if progress::set_run_state(&txn, tenant, run.id, &[RunState::Failed], RunState::Running, None, None, db_now)
            .await?
        {
            log.push(NewEvent::run("run_resumed", json!({"redrive_of": t.name})));
        }
        dead_letters::mark_redriven(&txn, &[d.id], db_now).await?;
        events::append(&txn, tenant, run.id, &log, now).await?;
        txn.commit().await.map_err(StoreError::from)?;
        let lane = crate::queue::lane(&t.task_type, crate::domain::flow::Priority::from_rank(t.priority));
        self.publish(tenant, &[(lane, t.id)]).await;
        Ok(true)
    }
}

/// Names of the tasks downstream (transitively) of any task in `roots`.
fn downstream<'a>(all: &'a [task::Model], roots: &HashSet<&str>) -> Result<HashSet<&'a str>, EngineError> {
    let mut blocked: HashSet<&str> = HashSet::new();
    loop {
        let before = blocked.len();
        for t in all {
            let deps: Vec<String> = serde_json::from_str(&t.depends_on).map_err(corrupt)?;
            if deps.iter().any(|d| roots.contains(d.as_str()) || blocked.contains(d.as_str())) {
                blocked.insert(t.name.as_str());
            }
        }
        if blocked.len() == before {
            return Ok(blocked);
        }
    }
}
