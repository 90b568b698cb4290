//! Queries on `run_gates` (runs under a concurrency limit or a schedule's buffer) and admitting queued runs.

use super::dbtime::DbNow;
use super::entity::{run, run_gate, task};
use super::{Backend, StoreError};
use crate::domain::records::Tenant;
use crate::domain::state::{RunState, TaskState};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};
use uuid::Uuid;

/// Gate states as stored.
pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";

/// A gate row about to be written with its run.
#[derive(Debug, Clone)]
pub struct NewGate {
    pub run_id: Uuid,
    pub workflow_name: String,
    pub concurrency_key: Option<String>,
    pub schedule_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// Serializes admission for one workflow of one tenant until the transaction ends, across
/// every control plane (a transaction-scoped advisory lock on PostgreSQL; SQLite has one writer).
pub async fn lock_workflow<C: ConnectionTrait>(
    c: &C,
    backend: Backend,
    tenant: &Tenant,
    workflow: &str,
) -> Result<(), StoreError> {
    match backend {
        Backend::Postgres => {
            let key = format!("braid/admission/{}/{workflow}", tenant.as_str());
            c.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))::text",
                vec![key.into()],
            ))
            .await?;
            Ok(())
        }
        Backend::Sqlite => Ok(()),
    }
}

/// Writes queued gates for new runs.
pub async fn insert<C: ConnectionTrait>(c: &C, tenant: &Tenant, gates: &[NewGate]) -> Result<(), StoreError> {
    if gates.is_empty() {
        return Ok(());
    }
    let models = gates.iter().map(|g| run_gate::ActiveModel {
        run_id: Set(g.run_id),
        tenant_id: Set(tenant.as_str().to_owned()),
        workflow_name: Set(g.workflow_name.clone()),
        concurrency_key: Set(g.concurrency_key.clone()),
        schedule_id: Set(g.schedule_id),
        state: Set(QUEUED.to_owned()),
        created_at: Set(g.created_at),
    });
    run_gate::Entity::insert_many(models).exec_without_returning(c).await?;
    Ok(())
}

/// The workflow's running gates, and its first `queued_limit` queued gates in arrival order.
pub async fn of_workflow<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    workflow: &str,
    queued_limit: u64,
) -> Result<(Vec<run_gate::Model>, Vec<run_gate::Model>), StoreError> {
    let base = || {
        run_gate::Entity::find()
            .filter(run_gate::Column::TenantId.eq(tenant.as_str()))
            .filter(run_gate::Column::WorkflowName.eq(workflow))
    };
    let running = base()
        .filter(run_gate::Column::State.eq(RUNNING))
        .order_by_asc(run_gate::Column::CreatedAt)
        .order_by_asc(run_gate::Column::RunId)
        .all(c)
        .await?;
    let queued = base()
        .filter(run_gate::Column::State.eq(QUEUED))
        .order_by_asc(run_gate::Column::CreatedAt)
        .order_by_asc(run_gate::Column::RunId)
        .limit(queued_limit)
        .all(c)
        .await?;
    Ok((running, queued))
}

/// Whether a run of `schedule_id` other than `except` is running (gated or not).
pub async fn schedule_has_running<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    schedule_id: Uuid,
) -> Result<bool, StoreError> {
    Ok(run::Entity::find()
        .filter(run::Column::TenantId.eq(tenant.as_str()))
        .filter(run::Column::ScheduleId.eq(schedule_id))
        .filter(run::Column::State.eq(RunState::Running.as_str()))
        .one(c)
        .await?
        .is_some())
}

/// Of the queued runs `ids`, those this transaction could lock (others are being changed, by a
/// cancel for instance: they wait for the next admission), with their rows.
pub async fn lock_queued_runs<C: ConnectionTrait>(
    c: &C,
    backend: Backend,
    tenant: &Tenant,
    ids: &[Uuid],
) -> Result<Vec<run::Model>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let q = run::Entity::find()
        .filter(run::Column::TenantId.eq(tenant.as_str()))
        .filter(run::Column::Id.is_in(ids.iter().copied()))
        .filter(run::Column::State.eq(RunState::Queued.as_str()))
        .order_by_asc(run::Column::Id);
    let q = match backend {
        Backend::Postgres => q.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked),
        Backend::Sqlite => q,
    };
    Ok(q.all(c).await?)
}

/// Moves queued runs to running (started now, no waiting reason) and their gates with them.
pub async fn start_runs<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    ids: &[Uuid],
    now: DbNow,
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    run::Entity::update_many()
        .col_expr(run::Column::State, Expr::value(RunState::Running.as_str()))
        .col_expr(run::Column::StartedAt, now.now())
        .col_expr(run::Column::Reason, Expr::value(Option::<String>::None))
        .col_expr(run::Column::UpdatedAt, now.now())
        .filter(run::Column::TenantId.eq(tenant.as_str()))
        .filter(run::Column::Id.is_in(ids.iter().copied()))
        .filter(run::Column::State.eq(RunState::Queued.as_str()))
        .exec(c)
        .await?;
    run_gate::Entity::update_many()
        .col_expr(run_gate::Column::State, Expr::value(RUNNING))
        .filter(run_gate::Column::RunId.is_in(ids.iter().copied()))
        .exec(c)
        .await?;
    Ok(())
}

/// The tasks of `run_ids` with no dependency: they become ready now. Returns them.
pub async fn release_roots<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    run_ids: &[Uuid],
    now: DbNow,
) -> Result<Vec<task::Model>, StoreError> {
    if run_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(task::Entity::update_many()
        .col_expr(task::Column::State, Expr::value(TaskState::Ready.as_str()))
        .col_expr(task::Column::AvailableAt, now.now())
        .col_expr(task::Column::PublishedAt, now.now())
        .col_expr(task::Column::UpdatedAt, now.now())
        .filter(task::Column::TenantId.eq(tenant.as_str()))
        .filter(task::Column::RunId.is_in(run_ids.iter().copied()))
        .filter(task::Column::State.eq(TaskState::Pending.as_str()))
        .filter(task::Column::PendingDeps.eq(0))
        .exec_with_returning(c)
        .await?)
}

/// Sets the waiting reason of a queued run.
pub async fn set_reason<C: ConnectionTrait>(c: &C, tenant: &Tenant, id: Uuid, reason: &str) -> Result<(), StoreError> {
    run::Entity::update_many()
        .col_expr(run::Column::Reason, Expr::value(reason))
        .filter(run::Column::TenantId.eq(tenant.as_str()))
        .filter(run::Column::Id.eq(id))
        .filter(run::Column::State.eq(RunState::Queued.as_str()))
        .exec(c)
        .await?;
    Ok(())
}

/// Deletes the gates of `run_ids` (ended runs); returns the workflows they were in.
pub async fn remove<C: ConnectionTrait>(c: &C, tenant: &Tenant, run_ids: &[Uuid]) -> Result<Vec<String>, StoreError> {
    if run_ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = run_gate::Entity::delete_many()
        .filter(run_gate::Column::TenantId.eq(tenant.as_str()))
        .filter(run_gate::Column::RunId.is_in(run_ids.iter().copied()))
        .exec_with_returning(c)
        .await?;
    let mut names: Vec<String> = rows.into_iter().map(|g| g.workflow_name).collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Whether a queued gate waits on `schedule_id` in `workflow` (a buffered tick).
pub async fn schedule_has_queued<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    workflow: &str,
    schedule_id: Uuid,
) -> Result<bool, StoreError> {
    Ok(run_gate::Entity::find()
        .filter(run_gate::Column::TenantId.eq(tenant.as_str()))
        .filter(run_gate::Column::WorkflowName.eq(workflow))
        .filter(run_gate::Column::State.eq(QUEUED))
        .filter(run_gate::Column::ScheduleId.eq(schedule_id))
        .one(c)
        .await?
        .is_some())
}

/// Workflows (with their tenant) that have queued runs, at most `limit`.
pub async fn workflows_with_queued<C: ConnectionTrait>(c: &C, limit: u64) -> Result<Vec<(Tenant, String)>, StoreError> {
    let rows = run_gate::Entity::find()
        .select_only()
        .column(run_gate::Column::TenantId)
        .column(run_gate::Column::WorkflowName)
        .filter(run_gate::Column::State.eq(QUEUED))
        .distinct()
        .limit(limit)
        .into_tuple::<(String, String)>()
        .all(c)
        .await?;
    Ok(rows.into_iter().map(|(t, w)| (Tenant(t), w)).collect())
}
