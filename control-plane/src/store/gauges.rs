//! Grouped counts behind the periodic gauges and ListQueues: ready and due tasks by task type (depth and lag), leased tasks, waiting dead letters by workflow.

use super::StoreError;
use super::entity::{dead_letter, task};
use crate::domain::state::TaskState;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

/// The ready tasks of one (tenant, task type) due at the instant asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRow {
    pub tenant: String,
    pub task_type: String,
    pub depth: u64,
    /// `available_at` of the oldest one.
    pub oldest: DateTime<Utc>,
}

/// Ready tasks due at `now`, by tenant and task type, with the oldest one's `available_at`: one
/// grouped statement over the partial index `idx_tasks_ready_queue (tenant_id, task_type,
/// available_at) WHERE state = 'ready'`. Types with no due task are absent.
pub async fn ready_queues<C: ConnectionTrait>(c: &C, now: DateTime<Utc>) -> Result<Vec<QueueRow>, StoreError> {
    let rows: Vec<(String, String, i64, Option<DateTime<Utc>>)> = task::Entity::find()
        .select_only()
        .column(task::Column::TenantId)
        .column(task::Column::TaskType)
        .column_as(Expr::from(Func::count(Expr::col(task::Column::AvailableAt))), "depth")
        .column_as(Expr::from(Func::min(Expr::col(task::Column::AvailableAt))), "oldest")
        .filter(task::Column::State.eq(TaskState::Ready.as_str()))
        .filter(task::Column::AvailableAt.lte(now))
        .group_by(task::Column::TenantId)
        .group_by(task::Column::TaskType)
        .into_tuple()
        .all(c)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(tenant, task_type, depth, oldest)| {
            Some(QueueRow { tenant, task_type, depth: u64::try_from(depth).unwrap_or(0), oldest: oldest? })
        })
        .collect())
}

/// Dead letters not redriven (purged ones are deleted), by workflow, over every tenant.
pub async fn waiting_dead_letters<C: ConnectionTrait>(c: &C) -> Result<Vec<(String, u64)>, StoreError> {
    let rows: Vec<(String, i64)> = dead_letter::Entity::find()
        .select_only()
        .column(dead_letter::Column::WorkflowName)
        .column_as(Expr::from(Func::count(Expr::col(dead_letter::Column::Id))), "waiting")
        .filter(dead_letter::Column::RedrivenAt.is_null())
        .group_by(dead_letter::Column::WorkflowName)
        .into_tuple()
        .all(c)
        .await?;
    Ok(rows.into_iter().map(|(w, n)| (w, u64::try_from(n).unwrap_or(0))).collect())
}

/// Leased tasks of `tenant` by task type (over the partial index of leased tasks).
pub async fn leased_by_type<C: ConnectionTrait>(c: &C, tenant: &str) -> Result<Vec<(String, u64)>, StoreError> {
    let rows: Vec<(String, i64)> = task::Entity::find()
        .select_only()
        .column(task::Column::TaskType)
        .column_as(Expr::from(Func::count(Expr::col(task::Column::Id))), "leased")
        .filter(task::Column::TenantId.eq(tenant))
        .filter(task::Column::State.eq(TaskState::Leased.as_str()))
        .group_by(task::Column::TaskType)
        .into_tuple()
        .all(c)
        .await?;
    Ok(rows.into_iter().map(|(t, n)| (t, u64::try_from(n).unwrap_or(0))).collect())
}
