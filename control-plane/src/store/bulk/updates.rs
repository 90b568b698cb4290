//! Hot-path updates: tasks' ends, then attempts, dependents, runs and events in one chained statement (SQLite: row by row).

use super::super::dbtime::DbNow;
use super::super::entity::{run, task};
use super::super::events::NewEvent;
use super::super::leases::LeaseKey;
use super::super::{Backend, StoreError, corrupt};
use super::inserts::events_sql;
use super::sql::{Sql, chain};
use super::{micros, or_empty};
use crate::domain::records::Tenant;
use crate::domain::state::TaskState;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter};
use std::time::Duration;
use uuid::Uuid;

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
    let rows = Id::find_by_statement(
        Sql::new(
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
        )
        .statement(),
    )
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
async fn close_attempts_rows<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    records: &[AttemptRecord],
    now: DbNow,
) -> Result<(), StoreError> {
    for r in records {
        super::super::leases::finish_attempt(c, tenant, r.key, r.outcome, r.error.clone(), r.output.clone(), now)
            .await?;
    }
    Ok(())
}

fn close_attempts_sql(tenant: &Tenant, records: &[AttemptRecord]) -> Sql {
    let ids: Vec<Uuid> = records.iter().map(|r| r.key.task_id).collect();
    let attempts: Vec<i32> = records.iter().map(|r| i32::try_from(r.key.attempt).unwrap_or(-1)).collect();
    let leases: Vec<Uuid> = records.iter().map(|r| r.key.lease_id).collect();
    let outcomes: Vec<String> = records.iter().map(|r| r.outcome.to_owned()).collect();
    let errors: Vec<String> = records.iter().map(|r| or_empty(&r.error)).collect();
    let outputs: Vec<String> = records.iter().map(|r| or_empty(&r.output)).collect();
    Sql::new(
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
    )
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
async fn update_pending_rows<C: ConnectionTrait>(
    c: &C,
    changes: &[PendingChange],
    now: DbNow,
) -> Result<(), StoreError> {
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
    Ok(())
}

fn pending_sql(changes: &[PendingChange]) -> Sql {
    let ids: Vec<Uuid> = changes.iter().map(|ch| ch.id).collect();
    let pending: Vec<i32> = changes.iter().map(|ch| ch.pending_deps).collect();
    let ready: Vec<bool> = changes.iter().map(|ch| ch.ready).collect();
    Sql::new(
        "UPDATE tasks t SET pending_deps = v.pending, updated_at = now(), \
           state = CASE WHEN v.ready THEN 'ready' ELSE t.state END, \
           available_at = CASE WHEN v.ready THEN now() ELSE t.available_at END, \
           published_at = CASE WHEN v.ready THEN now() ELSE t.published_at END \
         FROM unnest($1::uuid[], $2::int[], $3::bool[]) AS v(id, pending, ready) \
         WHERE t.id = v.id AND t.state = 'pending'",
        vec![ids.into(), pending.into(), ready.into()],
    )
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
pub(super) async fn update_runs_rows<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    changes: &[RunChange],
    now: DbNow,
) -> Result<(), StoreError> {
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
    Ok(())
}

pub(super) fn run_changes_sql(changes: &[RunChange]) -> Sql {
    let ids: Vec<Uuid> = changes.iter().map(|ch| ch.id).collect();
    let seqs: Vec<i64> = changes.iter().map(|ch| ch.next_event_seq).collect();
    let states: Vec<String> = changes.iter().map(|ch| ch.end.as_ref().map_or("", |e| e.0).to_owned()).collect();
    let outputs: Vec<String> =
        changes.iter().map(|ch| ch.end.as_ref().and_then(|e| e.1.clone()).unwrap_or_default()).collect();
    let reasons: Vec<String> =
        changes.iter().map(|ch| ch.end.as_ref().and_then(|e| e.2.clone()).unwrap_or_default()).collect();
    Sql::new(
        "UPDATE runs r SET next_event_seq = v.seq, updated_at = now(), \
           state = CASE WHEN v.state <> '' THEN v.state ELSE r.state END, \
           output = CASE WHEN v.state <> '' THEN NULLIF(v.output, '') ELSE r.output END, \
           reason = CASE WHEN v.state <> '' THEN NULLIF(v.reason, '') ELSE r.reason END, \
           finished_at = CASE WHEN v.state <> '' THEN now() ELSE r.finished_at END \
         FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[]) \
           AS v(id, seq, state, output, reason) \
         WHERE r.id = v.id",
        vec![ids.into(), seqs.into(), states.into(), outputs.into(), reasons.into()],
    )
}

/// Everything a batch of results writes after the tasks' ends, in one statement on PostgreSQL:
/// the attempts' ends, the dependents, the runs (event counters and ends) and the events
/// (`(run, first sequence, events)`, numbered under the run locks).
#[allow(clippy::too_many_arguments)]
pub async fn write_progress<C: ConnectionTrait>(
    c: &C,
    backend: Backend,
    tenant: &Tenant,
    attempts: &[AttemptRecord],
    pending: &[PendingChange],
    runs: &[RunChange],
    events: &[(Uuid, i64, &[NewEvent])],
    at: DateTime<Utc>,
    now: DbNow,
) -> Result<(), StoreError> {
    if backend == Backend::Sqlite {
        close_attempts_rows(c, tenant, attempts, now).await?;
        update_pending_rows(c, pending, now).await?;
        update_runs_rows(c, tenant, runs, now).await?;
        return super::super::events::insert_numbered(c, tenant, events, at).await;
    }
    let mut parts = Vec::new();
    if !attempts.is_empty() {
        parts.push(("attempts", close_attempts_sql(tenant, attempts)));
    }
    if !pending.is_empty() {
        parts.push(("dependents", pending_sql(pending)));
    }
    if !runs.is_empty() {
        parts.push(("runs", run_changes_sql(runs)));
    }
    let rows: Vec<(Uuid, i64, &NewEvent)> = events
        .iter()
        .flat_map(|(run_id, first, log)| log.iter().zip(*first..).map(move |(e, seq)| (*run_id, seq, e)))
        .collect();
    let last = match (rows.is_empty(), parts.pop()) {
        (false, popped) => {
            parts.extend(popped);
            events_sql(tenant, &rows, at, "")
        }
        (true, Some((_, last))) => last,
        (true, None) => return Ok(()),
    };
    c.execute_raw(chain(parts, last).statement()).await?;
    Ok(())
}
