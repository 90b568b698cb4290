//! Set-based writes of the hot path: many rows in one statement (PostgreSQL `unnest` arrays), row by row on SQLite.
//!
//! The statements join the tasks with their ids (`unnest`) and test states as `state IN ('leased',
//! '')` rather than `state = 'leased'` (the same rows: no state is empty): that keeps the partial
//! indexes of ready and leased tasks out of these statements' generic plans. With them, a plan made
//! while statistics said "no leased tasks" scanned every leased (or, with a backlog, every ready)
//! task and compared each with every id of the batch (measured: a third of PostgreSQL's time).
//!
//! Each function takes rows whose values the engine computed under the run locks it holds,
//! so one statement per kind of change serves a whole batch of leases or results. On
//! PostgreSQL the statements are fixed texts with array parameters, so they are prepared
//! once per connection whatever the batch size. SQLite (embedded mode, one connection,
//! no network) runs the same changes row by row inside the caller's transaction.

mod inserts;
mod sql;
mod updates;

pub use inserts::{create_runs, record_leases};
pub use updates::{AttemptRecord, Ending, PendingChange, RunChange, end_attempts, write_progress};

use super::dbtime::DbNow;
use super::entity::{run, task};
use super::{Backend, StoreError};
use crate::domain::records::Tenant;
use crate::domain::state::TaskState;
use sea_orm::sea_query::{LockType, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect,
    Statement, Value,
};
use std::time::Duration;
use uuid::Uuid;

fn pg(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// A nullable JSON document as an array element: JSON is never empty, so `''` stands for NULL.
fn or_empty(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

/// Runs by primary key only (their tasks are the tenant's): with `tenant_id = $1` here too, a
/// generic plan made while the table was small scans every run of the tenant (70 ms instead of
/// 1 ms, measured), and `= ANY(ARRAY(…))` keeps it off a semi-join.
const LOCK_RUNS: &str = "SELECT * FROM runs WHERE id = ANY(ARRAY(SELECT t.run_id FROM unnest($2::uuid[]) AS v(id) \
     JOIN tasks t ON t.id = v.id WHERE t.tenant_id = $1)) ORDER BY id FOR UPDATE";

/// The runs of the tasks `task_ids`, locked in id order until the transaction ends (the order
/// every writer uses), in one statement.
pub async fn lock_runs_of_tasks<C: ConnectionTrait>(
    c: &C,
    backend: Backend,
    tenant: &Tenant,
    task_ids: &[Uuid],
) -> Result<Vec<run::Model>, StoreError> {
    lock_runs(c, backend, tenant, task_ids).await
}

async fn lock_runs<C: ConnectionTrait>(
    c: &C,
    backend: Backend,
    tenant: &Tenant,
    task_ids: &[Uuid],
) -> Result<Vec<run::Model>, StoreError> {
    if task_ids.is_empty() {
        return Ok(Vec::new());
    }
    match backend {
        Backend::Postgres => {
            Ok(run::Model::find_by_statement(pg(LOCK_RUNS, vec![tenant.as_str().into(), task_ids.to_vec().into()]))
                .all(c)
                .await?)
        }
        Backend::Sqlite => {
            let runs = Query::select()
                .column(task::Column::RunId)
                .from(task::Entity)
                .and_where(task::Column::TenantId.eq(tenant.as_str()))
                .and_where(task::Column::Id.is_in(task_ids.iter().copied()))
                .to_owned();
            Ok(run::Entity::find()
                .filter(run::Column::TenantId.eq(tenant.as_str()))
                .filter(run::Column::Id.in_subquery(runs))
                .order_by_asc(run::Column::Id)
                .all(c)
                .await?)
        }
    }
}

/// Every task of the runs `run_ids`, in id order.
pub async fn tasks_of_runs<C: ConnectionTrait>(
    c: &C,
    backend: Backend,
    tenant: &Tenant,
    run_ids: &[Uuid],
) -> Result<Vec<task::Model>, StoreError> {
    if run_ids.is_empty() {
        return Ok(Vec::new());
    }
    match backend {
        Backend::Postgres => Ok(task::Model::find_by_statement(pg(
            "SELECT * FROM tasks WHERE tenant_id = $1 AND run_id = ANY($2) ORDER BY id",
            vec![tenant.as_str().into(), run_ids.to_vec().into()],
        ))
        .all(c)
        .await?),
        Backend::Sqlite => Ok(task::Entity::find()
            .filter(task::Column::TenantId.eq(tenant.as_str()))
            .filter(task::Column::RunId.is_in(run_ids.iter().copied()))
            .order_by_asc(task::Column::Id)
            .all(c)
            .await?),
    }
}

/// The tasks `ids`, locked until the transaction ends (PostgreSQL), so that their lease
/// expiry cannot move (a heartbeat) between reading and writing them.
pub async fn lock_tasks<C: ConnectionTrait>(
    c: &C,
    backend: Backend,
    tenant: &Tenant,
    ids: &[Uuid],
) -> Result<Vec<task::Model>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let q = task::Entity::find()
        .filter(task::Column::TenantId.eq(tenant.as_str()))
        .filter(task::Column::Id.is_in(ids.iter().copied()))
        .order_by_asc(task::Column::Id);
    let q = match backend {
        Backend::Postgres => q.lock(LockType::Update),
        Backend::Sqlite => q,
    };
    Ok(q.all(c).await?)
}

/// Leases every task in `ids` that is ready and due, in one conditional statement (see
/// [`super::leases::lease`]); the PostgreSQL form has a fixed text, so it stays prepared.
pub async fn lease<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    ids: &[Uuid],
    worker_id: &str,
    lease_id: Uuid,
    ttl: Duration,
    now: DbNow,
) -> Result<Vec<task::Model>, StoreError> {
    if now.backend() == Backend::Sqlite || ids.is_empty() {
        return super::leases::lease(c, tenant, ids, worker_id, lease_id, ttl, now).await;
    }
    Ok(task::Model::find_by_statement(pg(
        // A join with the ids rather than `id = ANY($2)`: with a backlog, a generic plan of the
        // latter scans every ready task of the tenant and tests each against the whole array
        // (measured: a third of PostgreSQL's time in a 60,000-task drain).
        "UPDATE tasks t SET state = 'leased', attempt = t.attempt + 1, lease_id = $3, \
           lease_expires_at = now() + $4 * interval '1 microsecond', worker_id = $5, updated_at = now() \
         FROM unnest($2::uuid[]) AS v(id) \
         WHERE t.id = v.id AND t.tenant_id = $1 AND t.state IN ('ready', '') AND t.available_at <= now() \
         RETURNING t.*",
        vec![tenant.as_str().into(), ids.to_vec().into(), lease_id.into(), micros(ttl).into(), worker_id.into()],
    ))
    .all(c)
    .await?)
}

/// Outputs of the succeeded tasks named `names` of the runs `run_ids`, by (run, task name).
pub async fn outputs_of<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    run_ids: &[Uuid],
    names: &[String],
) -> Result<std::collections::HashMap<(Uuid, String), String>, StoreError> {
    if run_ids.is_empty() || names.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let rows: Vec<(Uuid, String, Option<String>)> = task::Entity::find()
        .select_only()
        .columns([task::Column::RunId, task::Column::Name, task::Column::Output])
        .filter(task::Column::TenantId.eq(tenant.as_str()))
        .filter(task::Column::RunId.is_in(run_ids.iter().copied()))
        .filter(task::Column::Name.is_in(names.iter().map(String::as_str)))
        .filter(task::Column::State.eq(TaskState::Succeeded.as_str()))
        .into_tuple()
        .all(c)
        .await?;
    Ok(rows.into_iter().filter_map(|(run, name, out)| out.map(|o| ((run, name), o))).collect())
}
