//! Queries of the lease protocol: batched leasing, heartbeats, fenced completion, expiry.

use super::dbtime::DbNow;
use super::entity::{task, task_attempt};
use super::{Backend, StoreError, corrupt};
use crate::domain::flow::Priority;
use crate::domain::records::Tenant;
use crate::domain::state::TaskState;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::time::Duration;
use uuid::Uuid;

/// The fencing token of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseKey {
    pub task_id: Uuid,
    pub attempt: u32,
    pub lease_id: Uuid,
}

fn attempt_i32(a: u32) -> i32 {
    i32::try_from(a).unwrap_or(i32::MAX)
}

/// Leases every task in `ids` that is ready and due, in one conditional statement:
/// the attempt number rises by one and the lease runs for `ttl` from the database's now.
/// Returns the rows that changed; the others were not ready (taken, cancelled, not due).
pub async fn lease<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    ids: &[Uuid],
    worker_id: &str,
    lease_id: Uuid,
    ttl: Duration,
    now: DbNow,
) -> Result<Vec<task::Model>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(task::Entity::update_many()
        .col_expr(task::Column::State, Expr::value(TaskState::Leased.as_str()))
        .col_expr(task::Column::Attempt, Expr::col(task::Column::Attempt).add(1))
        .col_expr(task::Column::LeaseId, Expr::value(lease_id))
        .col_expr(task::Column::LeaseExpiresAt, now.plus(ttl))
        .col_expr(task::Column::WorkerId, Expr::value(worker_id))
        .col_expr(task::Column::UpdatedAt, now.now())
        .filter(task::Column::TenantId.eq(tenant.as_str()))
        .filter(task::Column::Id.is_in(ids.iter().copied()))
        .filter(task::Column::State.eq(TaskState::Ready.as_str()))
        .filter(Expr::col(task::Column::AvailableAt).lte(now.now()))
        .exec_with_returning(c)
        .await?)
}

/// Records the start of each leased attempt, at the lease's own instant (the database clock).
pub async fn insert_attempts<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    leased: &[task::Model],
    worker_id: &str,
) -> Result<(), StoreError> {
    if leased.is_empty() {
        return Ok(());
    }
    let rows = leased.iter().map(|t| task_attempt::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0.clone()),
        task_id: Set(t.id),
        run_id: Set(t.run_id),
        attempt: Set(t.attempt),
        lease_id: Set(t.lease_id.unwrap_or_default()),
        worker_id: Set(Some(worker_id.to_owned())),
        started_at: Set(t.updated_at),
        finished_at: Set(None),
        outcome: Set(None),
        error: Set(None),
        output: Set(None),
    });
    task_attempt::Entity::insert_many(rows).exec_without_returning(c).await?;
    Ok(())
}

/// What a fenced transition writes.
#[derive(Debug, Clone)]
pub enum Transition {
    Succeeded {
        output: String,
    },
    /// Back to ready after `delay` from now, with the error kept as the last one.
    Retry {
        error_json: String,
        delay: Duration,
    },
    Failed {
        error_json: String,
    },
}

/// Closes the record of one attempt.
pub async fn finish_attempt<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    key: LeaseKey,
    outcome: &str,
    error_json: Option<String>,
    output: Option<String>,
    now: DbNow,
) -> Result<(), StoreError> {
    task_attempt::Entity::update_many()
        .col_expr(task_attempt::Column::FinishedAt, now.now())
        .col_expr(task_attempt::Column::Outcome, Expr::value(outcome))
        .col_expr(task_attempt::Column::Error, Expr::value(error_json))
        .col_expr(task_attempt::Column::Output, Expr::value(output))
        .filter(task_attempt::Column::TenantId.eq(tenant.as_str()))
        .filter(task_attempt::Column::TaskId.eq(key.task_id))
        .filter(task_attempt::Column::Attempt.eq(attempt_i32(key.attempt)))
        .filter(task_attempt::Column::LeaseId.eq(key.lease_id))
        .filter(task_attempt::Column::FinishedAt.is_null())
        .exec(c)
        .await?;
    Ok(())
}

/// Leases past their expiry, oldest first, across tenants (for the reaper).
pub async fn expired<C: ConnectionTrait>(c: &C, limit: u64, now: DbNow) -> Result<Vec<(Tenant, LeaseKey)>, StoreError> {
    let rows = task::Entity::find()
        .filter(task::Column::State.eq(TaskState::Leased.as_str()))
        .filter(Expr::col(task::Column::LeaseExpiresAt).lt(now.now()))
        .order_by_asc(task::Column::LeaseExpiresAt)
        .limit(limit)
        .all(c)
        .await?;
    rows.into_iter()
        .map(|t| {
            let lease_id = t.lease_id.ok_or_else(|| corrupt(format!("leased task {} has no lease id", t.id)))?;
            let attempt = u32::try_from(t.attempt).map_err(corrupt)?;
            Ok((Tenant(t.tenant_id), LeaseKey { task_id: t.id, attempt, lease_id }))
        })
        .collect()
}

/// Ready tasks that are due and were never published (a backoff just ended) or last
/// published more than `grace` ago,
/// across tenants, for the reconciler; marks them published now. Skips rows another
/// control plane is handling (PostgreSQL `SKIP LOCKED`).
pub async fn republish_candidates<C: ConnectionTrait>(
    c: &C,
    backend: Backend,
    grace: Duration,
    limit: u64,
    now: DbNow,
) -> Result<Vec<Republish>, StoreError> {
    let mut q = task::Entity::find()
        .filter(task::Column::State.eq(TaskState::Ready.as_str()))
        .filter(Expr::col(task::Column::AvailableAt).lte(now.now()))
        .filter(
            sea_orm::Condition::any()
                .add(task::Column::PublishedAt.is_null())
                .add(Expr::col(task::Column::PublishedAt).lte(now.minus(grace))),
        )
        .order_by_asc(task::Column::AvailableAt)
        .limit(limit);
    if backend == Backend::Postgres {
        q = q.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let rows = q.all(c).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    task::Entity::update_many()
        .col_expr(task::Column::PublishedAt, now.now())
        .filter(task::Column::Id.is_in(rows.iter().map(|t| t.id)))
        .exec(c)
        .await?;
    Ok(rows
        .into_iter()
        .map(|t| Republish {
            tenant: Tenant(t.tenant_id),
            task_type: t.task_type,
            id: t.id,
            priority: Priority::from_rank(t.priority),
            ready_since: t.available_at,
        })
        .collect())
}

/// A ready task the reconciler publishes again.
#[derive(Debug, Clone)]
pub struct Republish {
    pub tenant: Tenant,
    pub task_type: String,
    pub id: Uuid,
    pub priority: Priority,
    /// When it became due (its wait so far decides whether it is promoted).
    pub ready_since: DateTime<Utc>,
}

/// Extends the leases among `keys` that are still current to `ttl` from now and binds them
/// to `worker_id` (a worker that reconnected keeps what it holds). Returns those extended.
pub async fn extend_listed<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    keys: &[LeaseKey],
    worker_id: &str,
    ttl: Duration,
    now: DbNow,
) -> Result<Vec<LeaseKey>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let listed = keys.iter().fold(sea_orm::Condition::any(), |cond, k| {
        cond.add(
            sea_orm::Condition::all()
                .add(task::Column::Id.eq(k.task_id))
                .add(task::Column::Attempt.eq(attempt_i32(k.attempt)))
                .add(task::Column::LeaseId.eq(k.lease_id)),
        )
    });
    let rows = task::Entity::update_many()
        .col_expr(task::Column::LeaseExpiresAt, now.plus(ttl))
        .col_expr(task::Column::WorkerId, Expr::value(worker_id))
        .filter(task::Column::TenantId.eq(tenant.as_str()))
        .filter(task::Column::State.eq(TaskState::Leased.as_str()))
        .filter(listed)
        .exec_with_returning(c)
        .await?;
    Ok(keys.iter().filter(|k| rows.iter().any(|t| t.id == k.task_id)).copied().collect())
}

/// Records a result that arrived after its task was cancelled, on its attempt (which the
/// cancellation already closed); it changes nothing else.
pub async fn record_late_result<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    key: LeaseKey,
    error_json: Option<String>,
    output: Option<String>,
) -> Result<(), StoreError> {
    task_attempt::Entity::update_many()
        .col_expr(task_attempt::Column::Error, Expr::value(error_json))
        .col_expr(task_attempt::Column::Output, Expr::value(output))
        .filter(task_attempt::Column::TenantId.eq(tenant.as_str()))
        .filter(task_attempt::Column::TaskId.eq(key.task_id))
        .filter(task_attempt::Column::Attempt.eq(attempt_i32(key.attempt)))
        .filter(task_attempt::Column::LeaseId.eq(key.lease_id))
        .exec(c)
        .await?;
    Ok(())
}

/// The recorded outcome of attempt `key`, if that attempt finished.
pub async fn attempt_outcome<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    key: LeaseKey,
) -> Result<Option<String>, StoreError> {
    Ok(task_attempt::Entity::find()
        .filter(task_attempt::Column::TenantId.eq(tenant.as_str()))
        .filter(task_attempt::Column::TaskId.eq(key.task_id))
        .filter(task_attempt::Column::Attempt.eq(attempt_i32(key.attempt)))
        .filter(task_attempt::Column::LeaseId.eq(key.lease_id))
        .one(c)
        .await?
        .and_then(|a| a.outcome))
}

/// Hands a lease back unused: the task is ready again at once and the attempt does not count
/// against its budget (the attempt number is not reused; the next lease takes the next one).
pub async fn release<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    key: LeaseKey,
    now: DbNow,
) -> Result<bool, StoreError> {
    let res = task::Entity::update_many()
        .col_expr(task::Column::State, Expr::value(TaskState::Ready.as_str()))
        .col_expr(task::Column::MaxAttempts, Expr::col(task::Column::MaxAttempts).add(1))
        .col_expr(task::Column::LeaseExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(task::Column::AvailableAt, now.now())
        .col_expr(task::Column::PublishedAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(task::Column::UpdatedAt, now.now())
        .filter(task::Column::TenantId.eq(tenant.as_str()))
        .filter(task::Column::Id.eq(key.task_id))
        .filter(task::Column::Attempt.eq(attempt_i32(key.attempt)))
        .filter(task::Column::LeaseId.eq(key.lease_id))
        .filter(task::Column::State.eq(TaskState::Leased.as_str()))
        .exec(c)
        .await?;
    Ok(res.rows_affected == 1)
}
