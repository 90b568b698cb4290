//! Queries on the dead-letter queue: tasks out of attempts, listed by filter, redriven and purged.

use super::dbtime::DbNow;
use super::entity::dead_letter;
use super::{StoreError, corrupt};
use crate::domain::records::{TaskError, Tenant};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

/// A dead-lettered task.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub id: Uuid,
    pub task_id: Uuid,
    pub run_id: Uuid,
    pub workflow_name: String,
    pub workflow_version: u32,
    pub task_name: String,
    pub task_type: String,
    pub error: TaskError,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
}

/// Selects dead letters; None matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeadLetterFilter {
    pub workflow_name: Option<String>,
    pub task_name: Option<String>,
    pub error_type: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// Only the dead letters of this run.
    pub run_id: Option<Uuid>,
}

/// A dead letter about to be recorded.
#[derive(Debug)]
pub struct NewDeadLetter<'a> {
    pub task_id: Uuid,
    pub run_id: Uuid,
    pub workflow_name: &'a str,
    pub workflow_version: i32,
    pub task_name: &'a str,
    pub task_type: &'a str,
    pub error_json: &'a str,
    pub error_type: &'a str,
    pub attempts: i32,
    pub now: DateTime<Utc>,
}

pub async fn insert<C: ConnectionTrait>(c: &C, tenant: &Tenant, d: &NewDeadLetter<'_>) -> Result<(), StoreError> {
    let row = dead_letter::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0.clone()),
        task_id: Set(d.task_id),
        run_id: Set(d.run_id),
        workflow_name: Set(d.workflow_name.to_owned()),
        workflow_version: Set(d.workflow_version),
        task_name: Set(d.task_name.to_owned()),
        task_type: Set(d.task_type.to_owned()),
        error: Set(d.error_json.to_owned()),
        attempts: Set(d.attempts),
        created_at: Set(d.now),
        redriven_at: Set(None),
        error_type: Set(d.error_type.to_owned()),
    };
    dead_letter::Entity::insert(row).exec_without_returning(c).await?;
    Ok(())
}

fn record(m: dead_letter::Model) -> Result<DeadLetter, StoreError> {
    let error: TaskError = serde_json::from_str(&m.error).map_err(corrupt)?;
    Ok(DeadLetter {
        id: m.id,
        task_id: m.task_id,
        run_id: m.run_id,
        workflow_name: m.workflow_name,
        workflow_version: u32::try_from(m.workflow_version).map_err(corrupt)?,
        task_name: m.task_name,
        task_type: m.task_type,
        error,
        attempts: u32::try_from(m.attempts).map_err(corrupt)?,
        created_at: m.created_at,
    })
}

/// Dead letters not yet redriven that match `filter` (and `ids` when given), newest first.
pub async fn list<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    filter: &DeadLetterFilter,
    ids: Option<&[Uuid]>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<DeadLetter>, StoreError> {
    let mut q = waiting(tenant, filter);
    if let Some(ids) = ids {
        q = q.filter(dead_letter::Column::Id.is_in(ids.iter().copied()));
    }
    if let Some(after) = after {
        q = q.filter(dead_letter::Column::Id.lt(after));
    }
    q.order_by_desc(dead_letter::Column::Id).limit(limit).all(c).await?.into_iter().map(record).collect()
}

/// The query of the dead letters of `tenant` not yet redriven that match `filter`.
pub(crate) fn waiting(tenant: &Tenant, filter: &DeadLetterFilter) -> sea_orm::Select<dead_letter::Entity> {
    let mut q = dead_letter::Entity::find()
        .filter(dead_letter::Column::TenantId.eq(tenant.as_str()))
        .filter(dead_letter::Column::RedrivenAt.is_null());
    if let Some(w) = &filter.workflow_name {
        q = q.filter(dead_letter::Column::WorkflowName.eq(w.as_str()));
    }
    if let Some(t) = &filter.task_name {
        q = q.filter(dead_letter::Column::TaskName.eq(t.as_str()));
    }
    if let Some(t) = &filter.error_type {
        q = q.filter(dead_letter::Column::ErrorType.eq(t.as_str()));
    }
    if let Some(t) = filter.created_after {
        q = q.filter(dead_letter::Column::CreatedAt.gte(t));
    }
    if let Some(t) = filter.created_before {
        q = q.filter(dead_letter::Column::CreatedAt.lt(t));
    }
    if let Some(r) = filter.run_id {
        q = q.filter(dead_letter::Column::RunId.eq(r));
    }
    q
}

/// Marks dead letters redriven.
pub async fn mark_redriven<C: ConnectionTrait>(c: &C, ids: &[Uuid], now: DbNow) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    dead_letter::Entity::update_many()
        .col_expr(dead_letter::Column::RedrivenAt, now.now())
        .filter(dead_letter::Column::Id.is_in(ids.iter().copied()))
        .filter(dead_letter::Column::RedrivenAt.is_null())
        .exec(c)
        .await?;
    Ok(())
}

/// Deletes the dead letters `ids` of `tenant` not yet redriven; returns how many went.
pub async fn purge<C: ConnectionTrait>(c: &C, tenant: &Tenant, ids: &[Uuid]) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let done = dead_letter::Entity::delete_many()
        .filter(dead_letter::Column::TenantId.eq(tenant.as_str()))
        .filter(dead_letter::Column::RedrivenAt.is_null())
        .filter(dead_letter::Column::Id.is_in(ids.iter().copied()))
        .exec(c)
        .await?;
    Ok(done.rows_affected)
}
