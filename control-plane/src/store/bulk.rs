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

use super::dbtime::DbNow;
use super::entity::{run, task};
use super::leases::LeaseKey;
use super::{Backend, StoreError, corrupt};
use crate::domain::records::Tenant;
use crate::domain::state::TaskState;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockType, Query};
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

/// Turns off the wait for the WAL flush at commit for this transaction (PostgreSQL): for
/// writes that a crash may lose without breaking a promise (a lease lost in a crash only
/// means its task is offered again, which at-least-once delivery allows).
pub async fn relax_commit<C: ConnectionTrait>(c: &C, backend: Backend) -> Result<(), StoreError> {
    if backend == Backend::Postgres {
        c.execute_unprepared("SET LOCAL synchronous_commit = off").await?;
    }
    Ok(())
}

/// The runs of the tasks `task_ids`, locked in id order until the transaction ends (the order
/// every writer uses), in one statement.
pub async fn lock_runs_of_tasks<C: ConnectionTrait>(
    c: &C,
    backend: Backend,
    tenant: &Tenant,
    task_ids: &[Uuid],
) -> Result<Vec<run::Model>, StoreError> {
    if task_ids.is_empty() {
        return Ok(Vec::new());
    }
    match backend {
        Backend::Postgres => Ok(run::Model::find_by_statement(pg(
            // Runs by primary key only (their tasks are the tenant's): with `tenant_id = $1` here too,
            // a generic plan made while the table was small scans every run of the tenant (70 ms
            // instead of 1 ms, measured), and `= ANY(ARRAY(…))` keeps it off a semi-join.
            "SELECT * FROM runs WHERE id = ANY(ARRAY(SELECT t.run_id FROM unnest($2::uuid[]) AS v(id) \
             JOIN tasks t ON t.id = v.id WHERE t.tenant_id = $1)) ORDER BY id FOR UPDATE",
            vec![tenant.as_str().into(), task_ids.to_vec().into()],
        ))
        .all(c)
        .await?),
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

/// How a fenced attempt ends, as written to its task.
#[derive(Debug, Clone)]
pub struct Ending {
    pub key: LeaseKey,
    /// `succeeded`, `ready` (a retry after `delay`) or `failed`.
    pub state: TaskState,
    pub output: Option<String>,
    pub last_error: Option<String>,
    pub delay: Duration,
}

/// Writes `endings` to their tasks, each only if its lease is still current. Returns the
/// ids of the tasks written.
pub async fn end_attempts<C: ConnectionTrait>(
    c: &C,
    backend: Backend,
    tenant: &Tenant,
    endings: &[Ending],
    now: DbNow,
) -> Result<Vec<Uuid>, StoreError> {
    if endings.is_empty() {
        return Ok(Vec::new());
    }
    if backend == Backend::Sqlite {
        let mut written = Vec::new();
        for e in endings {
            if end_one(c, tenant, e, now).await? {
                written.push(e.key.task_id);
            }
        }
        return Ok(written);
    }
    let ids: Vec<Uuid> = endings.iter().map(|e| e.key.task_id).collect();
    let attempts: Vec<i32> = endings.iter().map(|e| i32::try_from(e.key.attempt).unwrap_or(-1)).collect();
    let leases: Vec<Uuid> = endings.iter().map(|e| e.key.lease_id).collect();
    let states: Vec<String> = endings.iter().map(|e| e.state.as_str().to_owned()).collect();
    let outputs: Vec<String> = endings.iter().map(|e| or_empty(&e.output)).collect();
    let errors: Vec<String> = endings.iter().map(|e| or_empty(&e.last_error)).collect();
    let delays: Vec<i64> = endings.iter().map(|e| micros(e.delay)).collect();
    #[derive(FromQueryResult)]
    struct Id {
        id: Uuid,
    }
    let rows = Id::find_by_statement(pg(
        "UPDATE tasks t SET state = v.state, \
           output = CASE WHEN v.state = 'succeeded' THEN v.output ELSE t.output END, \
           last_error = CASE WHEN v.err <> '' THEN v.err ELSE t.last_error END, \
           lease_expires_at = NULL, updated_at = now(), \
           finished_at = CASE WHEN v.state = 'ready' THEN t.finished_at ELSE now() END, \
           available_at = CASE WHEN v.state = 'ready' THEN now() + v.delay_us * interval '1 microsecond' \
             ELSE t.available_at END, \
           published_at = CASE WHEN v.state = 'ready' THEN NULL ELSE t.published_at END \
         FROM unnest($2::uuid[], $3::int[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::bigint[]) \
           AS v(id, attempt, lease_id, state, output, err, delay_us) \
         WHERE t.tenant_id = $1 AND t.id = v.id AND t.state IN ('leased', '') AND t.attempt = v.attempt \
           AND t.lease_id = v.lease_id \
         RETURNING t.id",
        vec![
            tenant.as_str().into(),
            ids.into(),
            attempts.into(),
            leases.into(),
            states.into(),
            outputs.into(),
            errors.into(),
            delays.into(),
        ],
    ))
    .all(c)
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

async fn end_one<C: ConnectionTrait>(c: &C, tenant: &Tenant, e: &Ending, now: DbNow) -> Result<bool, StoreError> {
    let mut q = task::Entity::update_many()
        .col_expr(task::Column::State, Expr::value(e.state.as_str()))
        .col_expr(task::Column::LeaseExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(task::Column::UpdatedAt, now.now());
    q = match e.state {
        TaskState::Ready => q
            .col_expr(task::Column::AvailableAt, now.plus(e.delay))
            .col_expr(task::Column::PublishedAt, Expr::value(Option::<DateTime<Utc>>::None)),
        TaskState::Succeeded => q
            .col_expr(task::Column::Output, Expr::value(e.output.clone()))
            .col_expr(task::Column::FinishedAt, now.now()),
        TaskState::Failed => q.col_expr(task::Column::FinishedAt, now.now()),
        TaskState::Pending | TaskState::Leased | TaskState::Cancelled | TaskState::Skipped => {
            return Err(corrupt(format!("an attempt cannot end its task in state {}", e.state.as_str())));
        }
    };
    if let Some(err) = &e.last_error {
        q = q.col_expr(task::Column::LastError, Expr::value(err.clone()));
    }
    let res = q
        .filter(task::Column::TenantId.eq(tenant.as_str()))
        .filter(task::Column::Id.eq(e.key.task_id))
        .filter(task::Column::Attempt.eq(i32::try_from(e.key.attempt).unwrap_or(-1)))
        .filter(task::Column::LeaseId.eq(e.key.lease_id))
        .filter(task::Column::State.eq(TaskState::Leased.as_str()))
        .exec(c)
        .await?;
    Ok(res.rows_affected == 1)
}

/// How the record of one attempt is closed.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub key: LeaseKey,
    pub outcome: &'static str,
    pub error: Option<String>,
    pub output: Option<String>,
}

/// Closes the records of attempts (those not closed yet).
pub async fn close_attempts<C: ConnectionTrait>(
    c: &C,
    backend: Backend,
    tenant: &Tenant,
    records: &[AttemptRecord],
    now: DbNow,
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    if backend == Backend::Sqlite {
        for r in records {
            super::leases::finish_attempt(c, tenant, r.key, r.outcome, r.error.clone(), r.output.clone(), now).await?;
        }
        return Ok(());
    }
    let ids: Vec<Uuid> = records.iter().map(|r| r.key.task_id).collect();
    let attempts: Vec<i32> = records.iter().map(|r| i32::try_from(r.key.attempt).unwrap_or(-1)).collect();
    let leases: Vec<Uuid> = records.iter().map(|r| r.key.lease_id).collect();
    let outcomes: Vec<String> = records.iter().map(|r| r.outcome.to_owned()).collect();
    let errors: Vec<String> = records.iter().map(|r| or_empty(&r.error)).collect();
    let outputs: Vec<String> = records.iter().map(|r| or_empty(&r.output)).collect();
    c.execute_raw(pg(
        "UPDATE task_attempts a SET finished_at = now(), outcome = v.outcome, \
           error = NULLIF(v.err, ''), output = NULLIF(v.output, '') \
         FROM unnest($2::uuid[], $3::int[], $4::uuid[], $5::text[], $6::text[], $7::text[]) \
           AS v(task_id, attempt, lease_id, outcome, err, output) \
         WHERE a.tenant_id = $1 AND a.task_id = v.task_id AND a.attempt = v.attempt AND a.lease_id = v.lease_id \
           AND a.finished_at IS NULL",
        vec![
            tenant.as_str().into(),
            ids.into(),
            attempts.into(),
            leases.into(),
            outcomes.into(),
            errors.into(),
            outputs.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Pending tasks whose count of unfinished dependencies changed: the new count, and whether
/// the task is ready now (its dependencies all succeeded).
#[derive(Debug, Clone, Copy)]
pub struct PendingChange {
    pub id: Uuid,
    pub pending_deps: i32,
    pub ready: bool,
}

/// Writes `changes` to pending tasks; ready ones become due and published now.
pub async fn update_pending<C: ConnectionTrait>(
    c: &C,
    backend: Backend,
    changes: &[PendingChange],
    now: DbNow,
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    if backend == Backend::Sqlite {
        for ch in changes {
            let mut q = task::Entity::update_many()
                .col_expr(task::Column::PendingDeps, Expr::value(ch.pending_deps))
                .col_expr(task::Column::UpdatedAt, now.now());
            if ch.ready {
                q = q
                    .col_expr(task::Column::State, Expr::value(TaskState::Ready.as_str()))
                    .col_expr(task::Column::AvailableAt, now.now())
                    .col_expr(task::Column::PublishedAt, now.now());
            }
            q.filter(task::Column::Id.eq(ch.id))
                .filter(task::Column::State.eq(TaskState::Pending.as_str()))
                .exec(c)
                .await?;
        }
        return Ok(());
    }
    let ids: Vec<Uuid> = changes.iter().map(|ch| ch.id).collect();
    let pending: Vec<i32> = changes.iter().map(|ch| ch.pending_deps).collect();
    let ready: Vec<bool> = changes.iter().map(|ch| ch.ready).collect();
    c.execute_raw(pg(
        "UPDATE tasks t SET pending_deps = v.pending, updated_at = now(), \
           state = CASE WHEN v.ready THEN 'ready' ELSE t.state END, \
           available_at = CASE WHEN v.ready THEN now() ELSE t.available_at END, \
           published_at = CASE WHEN v.ready THEN now() ELSE t.published_at END \
         FROM unnest($1::uuid[], $2::int[], $3::bool[]) AS v(id, pending, ready) \
         WHERE t.id = v.id AND t.state = 'pending'",
        vec![ids.into(), pending.into(), ready.into()],
    ))
    .await?;
    Ok(())
}

/// A change to a locked run: its new last event sequence and, when it ends, its end.
#[derive(Debug, Clone)]
pub struct RunChange {
    pub id: Uuid,
    pub next_event_seq: i64,
    /// (state, output, reason) when the run ends.
    pub end: Option<(&'static str, Option<String>, Option<String>)>,
}

/// Writes `changes` to runs the caller holds locked (found through the tenant's tasks, so by
/// primary key only here: see [`lock_runs_of_tasks`]).
pub async fn update_runs<C: ConnectionTrait>(
    c: &C,
    backend: Backend,
    tenant: &Tenant,
    changes: &[RunChange],
    now: DbNow,
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    if backend == Backend::Sqlite {
        for ch in changes {
            let mut q = run::Entity::update_many()
                .col_expr(run::Column::NextEventSeq, Expr::value(ch.next_event_seq))
                .col_expr(run::Column::UpdatedAt, now.now());
            if let Some((state, output, reason)) = &ch.end {
                q = q
                    .col_expr(run::Column::State, Expr::value(*state))
                    .col_expr(run::Column::Output, Expr::value(output.clone()))
                    .col_expr(run::Column::Reason, Expr::value(reason.clone()))
                    .col_expr(run::Column::FinishedAt, now.now());
            }
            q.filter(run::Column::TenantId.eq(tenant.as_str())).filter(run::Column::Id.eq(ch.id)).exec(c).await?;
        }
        return Ok(());
    }
    let ids: Vec<Uuid> = changes.iter().map(|ch| ch.id).collect();
    let seqs: Vec<i64> = changes.iter().map(|ch| ch.next_event_seq).collect();
    let states: Vec<String> = changes.iter().map(|ch| ch.end.as_ref().map_or("", |e| e.0).to_owned()).collect();
    let outputs: Vec<String> =
        changes.iter().map(|ch| ch.end.as_ref().and_then(|e| e.1.clone()).unwrap_or_default()).collect();
    let reasons: Vec<String> =
        changes.iter().map(|ch| ch.end.as_ref().and_then(|e| e.2.clone()).unwrap_or_default()).collect();
    c.execute_raw(pg(
        "UPDATE runs r SET next_event_seq = v.seq, updated_at = now(), \
           state = CASE WHEN v.state <> '' THEN v.state ELSE r.state END, \
           output = CASE WHEN v.state <> '' THEN NULLIF(v.output, '') ELSE r.output END, \
           reason = CASE WHEN v.state <> '' THEN NULLIF(v.reason, '') ELSE r.reason END, \
           finished_at = CASE WHEN v.state <> '' THEN now() ELSE r.finished_at END \
         FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[]) \
           AS v(id, seq, state, output, reason) \
         WHERE r.id = v.id",
        vec![ids.into(), seqs.into(), states.into(), outputs.into(), reasons.into()],
    ))
    .await?;
    Ok(())
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

/// Whether `c` talks to PostgreSQL (the unnest forms below apply there only).
pub fn is_postgres<C: ConnectionTrait>(c: &C) -> bool {
    c.get_database_backend() == DbBackend::Postgres
}

/// Inserts runs from arrays (one fixed statement text, whatever the count), skipping those whose
/// idempotency key is taken; returns how many were inserted.
pub async fn insert_runs_pg<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    runs: &[super::runs::NewRun<'_>],
) -> Result<u64, StoreError> {
    if runs.is_empty() {
        return Ok(0);
    }
    let col = |f: &dyn Fn(&super::runs::NewRun<'_>) -> String| -> Vec<String> { runs.iter().map(f).collect() };
    let ids: Vec<Uuid> = runs.iter().map(|r| r.id).collect();
    let versions: Vec<i32> = runs.iter().map(|r| i32::try_from(r.workflow_version).unwrap_or(i32::MAX)).collect();
    let seqs: Vec<i64> = runs.iter().map(|r| r.events).collect();
    let nows: Vec<DateTime<Utc>> = runs.iter().map(|r| r.now).collect();
    let res = c
        .execute_raw(pg(
            "INSERT INTO runs (id, tenant_id, workflow_name, workflow_version, state, input, idempotency_key, \
               input_hash, trigger_source, next_event_seq, created_at, started_at, updated_at) \
             SELECT v.id, $1, v.workflow, v.version, v.state, v.input, NULLIF(v.key, ''), v.hash, v.source, v.seq, \
               v.at, CASE WHEN v.state = 'running' THEN v.at END, v.at \
             FROM unnest($2::uuid[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::text[], \
               $9::text[], $10::bigint[], $11::timestamptz[]) \
               AS v(id, workflow, version, state, input, key, hash, source, seq, at) \
             ON CONFLICT DO NOTHING",
            vec![
                tenant.as_str().into(),
                ids.into(),
                col(&|r| r.workflow_name.to_owned()).into(),
                versions.into(),
                col(&|r| r.state.as_str().to_owned()).into(),
                col(&|r| r.input.to_owned()).into(),
                col(&|r| r.idempotency_key.unwrap_or_default().to_owned()).into(),
                col(&|r| r.input_hash.to_owned()).into(),
                col(&|r| r.trigger_source.as_str().to_owned()).into(),
                seqs.into(),
                nows.into(),
            ],
        ))
        .await?;
    Ok(res.rows_affected())
}

/// Inserts tasks from arrays (one fixed statement text).
pub async fn insert_tasks_pg<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    tasks: &[super::tasks::NewTask<'_>],
) -> Result<(), StoreError> {
    if tasks.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(tasks.len());
    let (mut runs, mut names, mut types, mut states) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut deps, mut pending, mut max_attempts, mut policies) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut timeouts, mut nows) = (Vec::new(), Vec::new());
    for t in tasks {
        ids.push(t.id);
        runs.push(t.run_id);
        names.push(t.name.to_owned());
        types.push(t.task_type.to_owned());
        states.push(t.state.as_str().to_owned());
        deps.push(serde_json::to_string(t.depends_on).map_err(corrupt)?);
        pending.push(i32::try_from(t.depends_on.len()).map_err(corrupt)?);
        max_attempts.push(i32::try_from(t.retry.max_attempts).map_err(corrupt)?);
        policies.push(serde_json::to_string(t.retry).map_err(corrupt)?);
        timeouts.push(t.timeout_ms);
        nows.push(t.now);
    }
    c.execute_raw(pg(
        "INSERT INTO tasks (id, tenant_id, run_id, name, task_type, state, depends_on, pending_deps, attempt, \
           max_attempts, retry_policy, timeout_ms, available_at, created_at, updated_at, published_at) \
         SELECT v.id, $1, v.run_id, v.name, v.task_type, v.state, v.deps, v.pending, 0, v.max_attempts, v.policy, \
           v.timeout_ms, v.at, v.at, v.at, CASE WHEN v.state = 'ready' THEN v.at END \
         FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[], $9::int[], \
           $10::text[], $11::bigint[], $12::timestamptz[]) \
           AS v(id, run_id, name, task_type, state, deps, pending, max_attempts, policy, timeout_ms, at)",
        vec![
            tenant.as_str().into(),
            ids.into(),
            runs.into(),
            names.into(),
            types.into(),
            states.into(),
            deps.into(),
            pending.into(),
            max_attempts.into(),
            policies.into(),
            timeouts.into(),
            nows.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Inserts events from arrays (one fixed statement text): `(run, sequence, event)`.
pub async fn insert_events_pg<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    events: &[(Uuid, i64, &super::events::NewEvent)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let runs: Vec<Uuid> = events.iter().map(|e| e.0).collect();
    let seqs: Vec<i64> = events.iter().map(|e| e.1).collect();
    let kinds: Vec<String> = events.iter().map(|e| e.2.kind.to_owned()).collect();
    let names: Vec<String> = events.iter().map(|e| e.2.task_name.clone().unwrap_or_default()).collect();
    // Attempts count from 1: 0 stands for none.
    let attempts: Vec<i32> =
        events.iter().map(|e| e.2.attempt.map_or(0, |a| i32::try_from(a).unwrap_or(i32::MAX))).collect();
    let details: Vec<String> = events.iter().map(|e| e.2.detail.to_string()).collect();
    c.execute_raw(pg(
        "INSERT INTO run_events (tenant_id, run_id, sequence, kind, task_name, attempt, detail, created_at) \
         SELECT $1, v.run_id, v.seq, v.kind, NULLIF(v.name, ''), NULLIF(v.attempt, 0), v.detail, $8 \
         FROM unnest($2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::int[], $7::text[]) \
           AS v(run_id, seq, kind, name, attempt, detail)",
        vec![
            tenant.as_str().into(),
            runs.into(),
            seqs.into(),
            kinds.into(),
            names.into(),
            attempts.into(),
            details.into(),
            now.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Records the start of each leased attempt from arrays (one fixed statement text).
pub async fn insert_attempts_pg<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    leased: &[task::Model],
    worker_id: &str,
) -> Result<(), StoreError> {
    if leased.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = leased.iter().map(|_| Uuid::now_v7()).collect();
    let tasks: Vec<Uuid> = leased.iter().map(|t| t.id).collect();
    let runs: Vec<Uuid> = leased.iter().map(|t| t.run_id).collect();
    let attempts: Vec<i32> = leased.iter().map(|t| t.attempt).collect();
    let leases: Vec<Uuid> = leased.iter().map(|t| t.lease_id.unwrap_or_default()).collect();
    let started: Vec<DateTime<Utc>> = leased.iter().map(|t| t.updated_at).collect();
    c.execute_raw(pg(
        "INSERT INTO task_attempts (id, tenant_id, task_id, run_id, attempt, lease_id, worker_id, started_at) \
         SELECT v.id, $1, v.task_id, v.run_id, v.attempt, v.lease_id, $8, v.started_at \
         FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::int[], $6::uuid[], $7::timestamptz[]) \
           AS v(id, task_id, run_id, attempt, lease_id, started_at)",
        vec![
            tenant.as_str().into(),
            ids.into(),
            tasks.into(),
            runs.into(),
            attempts.into(),
            leases.into(),
            started.into(),
            worker_id.into(),
        ],
    ))
    .await?;
    Ok(())
}
