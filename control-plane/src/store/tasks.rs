//! Queries on tasks and their attempts.

use super::entity::{task, task_attempt};
use super::{StoreError, corrupt};
use crate::domain::flow::Priority;
use crate::domain::payload_ref::Stored;
use crate::domain::records::{Task, TaskAttempt, TaskError, Tenant};
use crate::domain::retry::RetryPolicy;
use crate::domain::state::TaskState;
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::collections::HashMap;
use uuid::Uuid;

/// A task about to be created with its run.
#[derive(Debug)]
pub struct NewTask<'a> {
    pub id: Uuid,
    pub run_id: Uuid,
    pub name: &'a str,
    pub task_type: &'a str,
    pub state: TaskState,
    pub depends_on: &'a [String],
    pub retry: &'a RetryPolicy,
    pub timeout_ms: i64,
    pub now: DateTime<Utc>,
    pub priority: Priority,
}

/// Tasks per insert statement (22 bind parameters each, under PostgreSQL's 65,535).
const TASKS_PER_STATEMENT: usize = 1_000;

/// Inserts tasks in multi-row statements of up to a thousand.
pub async fn insert_many<C: ConnectionTrait>(c: &C, tenant: &Tenant, tasks: &[NewTask<'_>]) -> Result<(), StoreError> {
    for chunk in tasks.chunks(TASKS_PER_STATEMENT) {
        insert_chunk(c, tenant, chunk).await?;
    }
    Ok(())
}

async fn insert_chunk<C: ConnectionTrait>(c: &C, tenant: &Tenant, tasks: &[NewTask<'_>]) -> Result<(), StoreError> {
    let mut models = Vec::with_capacity(tasks.len());
    for t in tasks {
        models.push(task::ActiveModel {
            id: Set(t.id),
            tenant_id: Set(tenant.0.clone()),
            run_id: Set(t.run_id),
            name: Set(t.name.to_owned()),
            task_type: Set(t.task_type.to_owned()),
            state: Set(t.state.as_str().to_owned()),
            depends_on: Set(serde_json::to_string(t.depends_on).map_err(corrupt)?),
            pending_deps: Set(i32::try_from(t.depends_on.len()).map_err(corrupt)?),
            attempt: Set(0),
            max_attempts: Set(i32::try_from(t.retry.max_attempts).map_err(corrupt)?),
            retry_policy: Set(serde_json::to_string(t.retry).map_err(corrupt)?),
            timeout_ms: Set(t.timeout_ms),
            lease_id: Set(None),
            lease_expires_at: Set(None),
            worker_id: Set(None),
            available_at: Set(t.now),
            output: Set(None),
            last_error: Set(None),
            created_at: Set(t.now),
            updated_at: Set(t.now),
            finished_at: Set(None),
            published_at: Set((t.state == TaskState::Ready).then_some(t.now)),
            priority: Set(t.priority.rank()),
        });
    }
    task::Entity::insert_many(models).exec_without_returning(c).await?;
    Ok(())
}

fn parse_error(json: Option<String>) -> Result<Option<TaskError>, StoreError> {
    json.map(|j| serde_json::from_str(&j).map_err(corrupt)).transpose()
}

fn attempt_record(m: task_attempt::Model) -> Result<TaskAttempt, StoreError> {
    Ok(TaskAttempt {
        attempt: u32::try_from(m.attempt).map_err(corrupt)?,
        lease_id: m.lease_id,
        worker_id: m.worker_id,
        started_at: m.started_at,
        finished_at: m.finished_at,
        outcome: m.outcome,
        error: parse_error(m.error)?,
    })
}

fn task_record(m: task::Model, attempts: Vec<TaskAttempt>) -> Result<Task, StoreError> {
    let (output, output_ref) = match m.output {
        Some(text) => Stored::decode(text).map_err(corrupt)?.split(),
        None => (None, None),
    };
    Ok(Task {
        id: m.id,
        run_id: m.run_id,
        name: m.name,
        task_type: m.task_type,
        state: m.state.parse().map_err(corrupt)?,
        depends_on: serde_json::from_str(&m.depends_on).map_err(corrupt)?,
        attempt: u32::try_from(m.attempt).map_err(corrupt)?,
        max_attempts: u32::try_from(m.max_attempts).map_err(corrupt)?,
        output,
        output_ref,
        last_error: parse_error(m.last_error)?,
        available_at: m.available_at,
        created_at: m.created_at,
        finished_at: m.finished_at,
        attempts,
    })
}

/// Every task of a run with its attempts, in creation order (ids are time-ordered UUIDv7).
pub async fn of_run<C: ConnectionTrait>(c: &C, tenant: &Tenant, run_id: Uuid) -> Result<Vec<Task>, StoreError> {
    let tasks = task::Entity::find()
        .filter(task::Column::TenantId.eq(tenant.as_str()))
        .filter(task::Column::RunId.eq(run_id))
        .order_by_asc(task::Column::Id)
        .all(c)
        .await?;
    let attempts = task_attempt::Entity::find()
        .filter(task_attempt::Column::TenantId.eq(tenant.as_str()))
        .filter(task_attempt::Column::RunId.eq(run_id))
        .order_by_asc(task_attempt::Column::Attempt)
        .all(c)
        .await?;
    let mut by_task: HashMap<Uuid, Vec<TaskAttempt>> = HashMap::new();
    for a in attempts {
        let task_id = a.task_id;
        by_task.entry(task_id).or_default().push(attempt_record(a)?);
    }
    tasks
        .into_iter()
        .map(|t| {
            let attempts = by_task.remove(&t.id).unwrap_or_default();
            task_record(t, attempts)
        })
        .collect()
}

/// The run of each of `ids` that exists in `tenant`, by task id.
pub async fn runs_of<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Uuid>, StoreError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, Uuid)> = task::Entity::find()
        .select_only()
        .columns([task::Column::Id, task::Column::RunId])
        .filter(task::Column::TenantId.eq(tenant.as_str()))
        .filter(task::Column::Id.is_in(ids.iter().copied()))
        .into_tuple()
        .all(c)
        .await?;
    Ok(rows.into_iter().collect())
}
