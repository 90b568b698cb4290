//! Retention's queries: workflows' retention settings, and old finished runs deleted in batches with every row they own (their objects are the engine's to delete).
//!
//! PostgreSQL has no index on `runs.state` or `runs.finished_at` (a run's state change stays a
//! heap-only update), so old runs are found by primary key: ids are UUIDv7, so every run created
//! before the cutoff has an id below the cutoff's UUIDv7 floor. `finished_at < cutoff` then keeps
//! only runs that ended before it. The selected runs are locked `FOR UPDATE SKIP LOCKED`, so a
//! batch never waits for (nor blocks for long) a writer holding one of them, and their rows are
//! deleted explicitly, children first (the two logs have no foreign keys on PostgreSQL).

use super::entity::{dead_letter, run, run_event, run_gate, task, task_attempt, workflow, workflow_version};
use super::{Backend, StoreError, corrupt};
use crate::domain::definition::WorkflowDefinition;
use crate::domain::records::Tenant;
use crate::domain::state::RunState;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Query};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::time::Duration;
use uuid::Uuid;

/// The retention a workflow sets for itself (its latest version's `settings.retention`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowRetention {
    pub tenant: Tenant,
    pub workflow_name: String,
    pub retention: Duration,
}

/// Which runs a batch may take.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// The runs of one workflow.
    Workflow { tenant: &'a str, workflow_name: &'a str },
    /// Every run except those of these workflows (which set their own retention).
    Except(&'a [WorkflowRetention]),
}

/// Rows one batch deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    pub runs: u64,
    pub tasks: u64,
    pub attempts: u64,
    pub events: u64,
}

/// What one batch did: what it deleted, and the highest run id it took (where the next batch of
/// the same pass starts), `None` when it found nothing.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub deleted: Deleted,
    pub last: Option<Uuid>,
    pub taken: u64,
    /// The runs deleted, with their tenants (their objects go once the batch commits).
    pub runs: Vec<(String, Uuid)>,
}

/// Every workflow (of every tenant) whose latest version sets `settings.retention`.
/// Only definitions that mention it are read and parsed.
pub async fn workflow_retentions<C: ConnectionTrait>(c: &C) -> Result<Vec<WorkflowRetention>, StoreError> {
    let latest = Query::select()
        .expr(Expr::val(1))
        .from(workflow::Entity)
        .and_where(
            Expr::col((workflow::Entity, workflow::Column::TenantId))
                .equals((workflow_version::Entity, workflow_version::Column::TenantId)),
        )
        .and_where(
            Expr::col((workflow::Entity, workflow::Column::Name))
                .equals((workflow_version::Entity, workflow_version::Column::WorkflowName)),
        )
        .and_where(
            Expr::col((workflow::Entity, workflow::Column::LatestVersion))
                .equals((workflow_version::Entity, workflow_version::Column::Version)),
        )
        .to_owned();
    let rows = workflow_version::Entity::find()
        .filter(workflow_version::Column::Definition.like("%\"retention\"%"))
        .filter(Expr::exists(latest))
        .order_by_asc(workflow_version::Column::TenantId)
        .order_by_asc(workflow_version::Column::WorkflowName)
        .all(c)
        .await?;
    let mut out = Vec::new();
    for m in rows {
        let def: WorkflowDefinition = serde_json::from_str(&m.definition)
            .map_err(|e| corrupt(format!("workflow {} v{}: {e}", m.workflow_name, m.version)))?;
        if let Some(retention) = def.settings.retention {
            out.push(WorkflowRetention { tenant: Tenant(m.tenant_id), workflow_name: m.workflow_name, retention });
        }
    }
    Ok(out)
}

/// The smallest UUIDv7 of the millisecond `at`: every id made before `at` is below it.
pub fn uuid_v7_floor(at: DateTime<Utc>) -> Uuid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &[0; 10]).into_uuid()
}

/// Deletes up to `limit` runs of `scope` that finished before `cutoff` (and were created before
/// it), with ids above `after`, that no dead letter still waiting for a redrive holds; with
/// them their events, attempts, tasks, redriven dead letters and gate. Call inside a transaction.
pub async fn delete_batch<C: ConnectionTrait>(
    c: &C,
    backend: Backend,
    scope: Scope<'_>,
    cutoff: DateTime<Utc>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Batch, StoreError> {
    let taken_runs = select_batch(c, backend, scope, cutoff, after, limit).await?;
    let ids: Vec<Uuid> = taken_runs.iter().map(|(_, id)| *id).collect();
    let Some(&last) = ids.last() else { return Ok(Batch::default()) };
    let taken = ids.len() as u64;
    let in_runs = || ids.iter().copied();
    let events = run_event::Entity::delete_many().filter(run_event::Column::RunId.is_in(in_runs())).exec(c).await?;
    // By task id: `(task_id, attempt)` is indexed, `run_id` is not.
    let tasks_of_runs = Query::select()
        .column(task::Column::Id)
        .from(task::Entity)
        .and_where(task::Column::RunId.is_in(in_runs()))
        .to_owned();
    let attempts = task_attempt::Entity::delete_many()
        .filter(task_attempt::Column::TaskId.in_subquery(tasks_of_runs))
        .exec(c)
        .await?;
    // Only redriven ones are left (a run with a waiting dead letter is not selected).
    dead_letter::Entity::delete_many().filter(dead_letter::Column::RunId.is_in(in_runs())).exec(c).await?;
    let tasks = task::Entity::delete_many().filter(task::Column::RunId.is_in(in_runs())).exec(c).await?;
    run_gate::Entity::delete_many().filter(run_gate::Column::RunId.is_in(in_runs())).exec(c).await?;
    let runs = run::Entity::delete_many().filter(run::Column::Id.is_in(in_runs())).exec(c).await?;
    let deleted = Deleted {
        runs: runs.rows_affected,
        tasks: tasks.rows_affected,
        attempts: attempts.rows_affected,
        events: events.rows_affected,
    };
    Ok(Batch { deleted, last: Some(last), taken, runs: taken_runs })
}

/// The runs a batch takes (tenant, id), in id order, locked on PostgreSQL (skipping locked ones).
async fn select_batch<C: ConnectionTrait>(
    c: &C,
    backend: Backend,
    scope: Scope<'_>,
    cutoff: DateTime<Utc>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<(String, Uuid)>, StoreError> {
    let finished = [RunState::Succeeded, RunState::Failed, RunState::Cancelled].map(RunState::as_str);
    let waiting_dead_letter = Query::select()
        .expr(Expr::val(1))
        .from(dead_letter::Entity)
        .and_where(Expr::col((dead_letter::Entity, dead_letter::Column::RunId)).equals((run::Entity, run::Column::Id)))
        .and_where(Expr::col((dead_letter::Entity, dead_letter::Column::RedrivenAt)).is_null())
        .to_owned();
    let mut q = run::Entity::find()
        .select_only()
        .column(run::Column::TenantId)
        .column(run::Column::Id)
        .filter(run::Column::Id.lt(uuid_v7_floor(cutoff)))
        .filter(run::Column::CreatedAt.lt(cutoff))
        .filter(run::Column::FinishedAt.lt(cutoff))
        .filter(run::Column::State.is_in(finished))
        .filter(Expr::exists(waiting_dead_letter).not());
    if let Some(after) = after {
        q = q.filter(run::Column::Id.gt(after));
    }
    q = match scope {
        Scope::Workflow { tenant, workflow_name } => {
            q.filter(run::Column::TenantId.eq(tenant)).filter(run::Column::WorkflowName.eq(workflow_name))
        }
        Scope::Except([]) => q,
        Scope::Except(own) => {
            let mut any = Condition::any();
            for w in own {
                any = any.add(
                    Condition::all()
                        .add(run::Column::TenantId.eq(w.tenant.as_str()))
                        .add(run::Column::WorkflowName.eq(w.workflow_name.as_str())),
                );
            }
            q.filter(any.not())
        }
    };
    q = q.order_by_asc(run::Column::Id).limit(limit);
    if backend == Backend::Postgres {
        q = q.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    Ok(q.into_tuple::<(String, Uuid)>().all(c).await?)
}

#[cfg(test)]
mod tests {
    use super::uuid_v7_floor;
    use chrono::{TimeZone, Utc};

    #[test]
    fn the_floor_is_below_every_later_id_and_above_every_earlier_one() {
        let at = Utc.timestamp_millis_opt(1_780_000_000_123).unwrap();
        let floor = uuid_v7_floor(at);
        let ts = |ms: u64| {
            uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, u32::try_from(ms % 1000).unwrap() * 1_000_000)
        };
        for _ in 0..100 {
            assert!(uuid::Uuid::new_v7(ts(1_780_000_000_122)) < floor);
            assert!(uuid::Uuid::new_v7(ts(1_780_000_000_123)) >= floor);
        }
        assert_eq!(floor.get_version_num(), 7);
    }
}
