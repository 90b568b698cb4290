//! Queries that move a run forward: locking a run, releasing dependents, skipping, cancelling, finishing.

use super::dbtime::DbNow;
use super::entity::{run, task};
use super::{Backend, StoreError};
use crate::domain::records::Tenant;
use crate::domain::state::{RunState, TaskState};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockType};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

/// The run `id`, locked until the transaction ends (PostgreSQL), so that the
/// completions of one run's tasks apply one after the other.
pub async fn lock_run<C: ConnectionTrait>(
    c: &C,
    backend: Backend,
    tenant: &Tenant,
    id: Uuid,
) -> Result<Option<run::Model>, StoreError> {
    let q = run::Entity::find_by_id(id).filter(run::Column::TenantId.eq(tenant.as_str()));
    let q = match backend {
        Backend::Postgres => q.lock(LockType::Update),
        Backend::Sqlite => q,
    };
    Ok(q.one(c).await?)
}

/// Every task row of a run, in creation order.
pub async fn tasks_of_run<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    run_id: Uuid,
) -> Result<Vec<task::Model>, StoreError> {
    Ok(task::Entity::find()
        .filter(task::Column::TenantId.eq(tenant.as_str()))
        .filter(task::Column::RunId.eq(run_id))
        .order_by_asc(task::Column::Id)
        .all(c)
        .await?)
}

/// Moves `ids` from one of `from` to `to`; ready tasks become due now and count as published now.
pub async fn set_task_state<C: ConnectionTrait>(
    c: &C,
    ids: &[Uuid],
    from: &[TaskState],
    to: TaskState,
    now: DbNow,
) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let mut q = task::Entity::update_many()
        .col_expr(task::Column::State, Expr::value(to.as_str()))
        .col_expr(task::Column::UpdatedAt, now.now());
    q = match to {
        TaskState::Ready => {
            q.col_expr(task::Column::AvailableAt, now.now()).col_expr(task::Column::PublishedAt, now.now())
        }
        TaskState::Skipped | TaskState::Cancelled => q
            .col_expr(task::Column::FinishedAt, now.now())
            .col_expr(task::Column::LeaseExpiresAt, Expr::value(Option::<DateTime<Utc>>::None)),
        TaskState::Pending | TaskState::Leased | TaskState::Succeeded | TaskState::Failed => q,
    };
    let res = q
        .filter(task::Column::Id.is_in(ids.iter().copied()))
        .filter(task::Column::State.is_in(from.iter().map(|s| s.as_str())))
        .exec(c)
        .await?;
    Ok(res.rows_affected)
}

/// Sets the unfinished-dependency count of one task (after a redrive).
pub async fn set_pending_deps<C: ConnectionTrait>(c: &C, id: Uuid, pending: i32) -> Result<(), StoreError> {
    task::Entity::update_many()
        .col_expr(task::Column::PendingDeps, Expr::value(pending))
        .col_expr(task::Column::FinishedAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(task::Column::Id.eq(id))
        .exec(c)
        .await?;
    Ok(())
}

/// Gives a failed task a fresh budget of attempts and makes it ready now.
pub async fn revive_failed<C: ConnectionTrait>(
    c: &C,
    id: Uuid,
    max_attempts: i32,
    now: DbNow,
) -> Result<bool, StoreError> {
    let res = task::Entity::update_many()
        .col_expr(task::Column::State, Expr::value(TaskState::Ready.as_str()))
        .col_expr(task::Column::MaxAttempts, Expr::value(max_attempts))
        .col_expr(task::Column::AvailableAt, now.now())
        .col_expr(task::Column::PublishedAt, now.now())
        .col_expr(task::Column::FinishedAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(task::Column::UpdatedAt, now.now())
        .filter(task::Column::Id.eq(id))
        .filter(task::Column::State.eq(TaskState::Failed.as_str()))
        .exec(c)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Moves the run from one of `from` to `to`, with its output or reason; returns whether it moved.
#[allow(clippy::too_many_arguments)]
pub async fn set_run_state<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    id: Uuid,
    from: &[RunState],
    to: RunState,
    output: Option<String>,
    reason: Option<String>,
    now: DbNow,
) -> Result<bool, StoreError> {
    let finished = match to {
        RunState::Succeeded | RunState::Failed | RunState::Cancelled => now.now(),
        RunState::Queued | RunState::Running => Expr::value(Option::<DateTime<Utc>>::None),
    };
    let res = run::Entity::update_many()
        .col_expr(run::Column::State, Expr::value(to.as_str()))
        .col_expr(run::Column::Output, Expr::value(output))
        .col_expr(run::Column::Reason, Expr::value(reason))
        .col_expr(run::Column::FinishedAt, finished)
        .col_expr(run::Column::UpdatedAt, now.now())
        .filter(run::Column::TenantId.eq(tenant.as_str()))
        .filter(run::Column::Id.eq(id))
        .filter(run::Column::State.is_in(from.iter().map(|s| s.as_str())))
        .exec(c)
        .await?;
    Ok(res.rows_affected == 1)
}
