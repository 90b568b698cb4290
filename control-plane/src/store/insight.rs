//! Grouped reads behind the dashboard: task counts per run, dead letters by group, leases per worker, recent dispatches per task type, a run's last event number.

use super::entity::{dead_letter, run, task, task_attempt};
use super::{StoreError, corrupt};
use crate::domain::records::{TaskError, Tenant};
use crate::domain::state::TaskState;
use crate::store::dead_letters::DeadLetterFilter;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect, RelationTrait,
};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// How many tasks of each state a run has.
pub type TaskCounts = HashMap<TaskState, u32>;

/// Task counts by state of each of `runs` (runs without tasks are absent).
pub async fn task_counts<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    runs: &[Uuid],
) -> Result<HashMap<Uuid, TaskCounts>, StoreError> {
    if runs.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, String, i64)> = task::Entity::find()
        .select_only()
        .column(task::Column::RunId)
        .column(task::Column::State)
        .column_as(Expr::from(Func::count(Expr::col(task::Column::Id))), "n")
        .filter(task::Column::TenantId.eq(tenant.as_str()))
        .filter(task::Column::RunId.is_in(runs.iter().copied()))
        .group_by(task::Column::RunId)
        .group_by(task::Column::State)
        .into_tuple()
        .all(c)
        .await?;
    let mut out: HashMap<Uuid, TaskCounts> = HashMap::new();
    for (run_id, state, n) in rows {
        let state: TaskState = state.parse().map_err(corrupt)?;
        out.entry(run_id).or_default().insert(state, u32::try_from(n).map_err(corrupt)?);
    }
    Ok(out)
}

/// Waiting dead letters of one (workflow, task, error type).
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetterGroup {
    pub workflow_name: String,
    pub task_name: String,
    pub error_type: String,
    pub count: u64,
    /// The newest dead letter of the group.
    pub latest_id: Uuid,
    pub latest_at: DateTime<Utc>,
    pub latest_run_id: Uuid,
    pub latest_error: TaskError,
}

/// Most groups one listing returns.
const MAX_GROUPS: u64 = 500;

/// Waiting dead letters matching `filter`, grouped by workflow, task and error type, the group
/// with the newest dead letter first: one grouped statement, then one read of the newest of each.
pub async fn dead_letter_groups<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    filter: &DeadLetterFilter,
) -> Result<Vec<DeadLetterGroup>, StoreError> {
    let matching = || crate::store::dead_letters::waiting(tenant, filter);
    // PostgreSQL has no max(uuid): the newest of a group is found by its creation time.
    let groups: Vec<(String, String, String, i64, DateTime<Utc>)> = matching()
        .select_only()
        .column(dead_letter::Column::WorkflowName)
        .column(dead_letter::Column::TaskName)
        .column(dead_letter::Column::ErrorType)
        .column_as(Expr::from(Func::count(Expr::col(dead_letter::Column::Id))), "n")
        .column_as(Expr::from(Func::max(Expr::col(dead_letter::Column::CreatedAt))), "latest")
        .group_by(dead_letter::Column::WorkflowName)
        .group_by(dead_letter::Column::TaskName)
        .group_by(dead_letter::Column::ErrorType)
        .order_by_desc(Expr::col("latest"))
        .limit(MAX_GROUPS)
        .into_tuple()
        .all(c)
        .await?;
    let mut newest: HashMap<(String, String, String), dead_letter::Model> = HashMap::new();
    let candidates = matching()
        .filter(dead_letter::Column::CreatedAt.is_in(groups.iter().map(|g| g.4)))
        .order_by_desc(dead_letter::Column::Id)
        .all(c)
        .await?;
    for m in candidates {
        newest.entry((m.workflow_name.clone(), m.task_name.clone(), m.error_type.clone())).or_insert(m);
    }
    groups
        .into_iter()
        .map(|(workflow_name, task_name, error_type, n, _)| {
            let key = (workflow_name, task_name, error_type);
            let m = newest.remove(&key).ok_or_else(|| corrupt(format!("dead letters of {key:?} vanished")))?;
            let (workflow_name, task_name, error_type) = key;
            Ok(DeadLetterGroup {
                workflow_name,
                task_name,
                error_type,
                count: u64::try_from(n).map_err(corrupt)?,
                latest_id: m.id,
                latest_at: m.created_at,
                latest_run_id: m.run_id,
                latest_error: serde_json::from_str(&m.error).map_err(corrupt)?,
            })
        })
        .collect()
}

/// Leases held by each worker of `tenant` (over the partial index of leased tasks).
pub async fn leases_by_worker<C: ConnectionTrait>(c: &C, tenant: &Tenant) -> Result<HashMap<String, u32>, StoreError> {
    let rows: Vec<(Option<String>, i64)> = task::Entity::find()
        .select_only()
        .column(task::Column::WorkerId)
        .column_as(Expr::from(Func::count(Expr::col(task::Column::Id))), "n")
        .filter(task::Column::TenantId.eq(tenant.as_str()))
        .filter(task::Column::State.eq(TaskState::Leased.as_str()))
        .group_by(task::Column::WorkerId)
        .into_tuple()
        .all(c)
        .await?;
    rows.into_iter()
        .filter_map(|(w, n)| w.map(|w| (w, n)))
        .map(|(w, n)| Ok((w, u32::try_from(n).map_err(corrupt)?)))
        .collect()
}

/// Attempts started (tasks leased) since `since`, by task type: attempt ids are UUIDv7 made at
/// lease time, so the range is a primary-key range.
pub async fn dispatched_since<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    since: DateTime<Utc>,
) -> Result<BTreeMap<String, u64>, StoreError> {
    let rows: Vec<(String, i64)> = task_attempt::Entity::find()
        .select_only()
        .join(JoinType::InnerJoin, task_attempt::Relation::Task.def())
        .column(task::Column::TaskType)
        .column_as(Expr::from(Func::count(Expr::col((task_attempt::Entity, task_attempt::Column::Id)))), "n")
        .filter(task_attempt::Column::TenantId.eq(tenant.as_str()))
        .filter(task_attempt::Column::Id.gte(super::retention::uuid_v7_floor(since)))
        .group_by(task::Column::TaskType)
        .into_tuple()
        .all(c)
        .await?;
    rows.into_iter().map(|(t, n)| Ok((t, u64::try_from(n).map_err(corrupt)?))).collect()
}

/// The sequence number of a run's newest event (0 when it has none), or None for no such run.
pub async fn last_sequence<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    run_id: Uuid,
) -> Result<Option<u64>, StoreError> {
    let seq: Option<i64> = run::Entity::find()
        .select_only()
        .column(run::Column::NextEventSeq)
        .filter(run::Column::TenantId.eq(tenant.as_str()))
        .filter(run::Column::Id.eq(run_id))
        .order_by_asc(run::Column::Id)
        .into_tuple()
        .one(c)
        .await?;
    seq.map(|s| u64::try_from(s).map_err(corrupt)).transpose()
}
