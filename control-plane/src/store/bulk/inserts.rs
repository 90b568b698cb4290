//! The set-based inserts of the hot path: new runs with their tasks and first events, leased attempts with their events.

use super::super::entity::task;
use super::super::events::NewEvent;
use super::super::runs::NewRun;
use super::super::tasks::NewTask;
use super::super::{Backend, StoreError, corrupt, events, leases, runs, tasks};
use super::sql::{Sql, chain};
use super::updates::{RunChange, update_runs_rows};
use crate::domain::records::Tenant;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};
use uuid::Uuid;

fn runs_sql(tenant: &Tenant, runs: &[NewRun<'_>]) -> Sql {
    let col = |f: &dyn Fn(&NewRun<'_>) -> String| -> Vec<String> { runs.iter().map(f).collect() };
    let ids: Vec<Uuid> = runs.iter().map(|r| r.id).collect();
    let versions: Vec<i32> = runs.iter().map(|r| i32::try_from(r.workflow_version).unwrap_or(i32::MAX)).collect();
    let seqs: Vec<i64> = runs.iter().map(|r| r.events).collect();
    let nows: Vec<DateTime<Utc>> = runs.iter().map(|r| r.now).collect();
    Sql::new(
        "INSERT INTO runs (id, tenant_id, workflow_name, workflow_version, state, input, idempotency_key, \
           input_hash, trigger_source, next_event_seq, created_at, started_at, updated_at, priority, \
           concurrency_key, schedule_id, scheduled_for, gated, reason, trace_context) \
         SELECT v.id, $1, v.workflow, v.version, v.state, v.input, NULLIF(v.key, ''), v.hash, v.source, v.seq, \
           v.at, CASE WHEN v.state = 'running' THEN v.at END, v.at, v.priority, NULLIF(v.ckey, ''), \
           NULLIF(v.schedule, '00000000-0000-0000-0000-000000000000'::uuid), \
           CASE WHEN v.schedule <> '00000000-0000-0000-0000-000000000000'::uuid THEN v.nominal END, \
           v.gated, NULLIF(v.reason, ''), NULLIF(v.trace, '') \
         FROM unnest($2::uuid[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::text[], \
           $9::text[], $10::bigint[], $11::timestamptz[], $12::smallint[], $13::text[], $14::uuid[], \
           $15::timestamptz[], $16::bool[], $17::text[], $18::text[]) \
           AS v(id, workflow, version, state, input, key, hash, source, seq, at, priority, ckey, schedule, \
             nominal, gated, reason, trace) \
         ON CONFLICT DO NOTHING RETURNING id",
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
            runs.iter().map(|r| r.priority.rank()).collect::<Vec<i16>>().into(),
            col(&|r| r.concurrency_key.unwrap_or_default().to_owned()).into(),
            // No schedule: the nil id (read back as NULL) and any instant (dropped with it).
            runs.iter().map(|r| r.schedule.map_or(Uuid::nil(), |s| s.schedule_id)).collect::<Vec<Uuid>>().into(),
            runs.iter().map(|r| r.schedule.map_or(r.now, |s| s.nominal)).collect::<Vec<DateTime<Utc>>>().into(),
            runs.iter().map(|r| r.gated).collect::<Vec<bool>>().into(),
            col(&|r| r.reason.unwrap_or_default().to_owned()).into(),
            col(&|r| r.trace_context.unwrap_or_default().to_owned()).into(),
        ],
    )
}

/// `filter` is appended after the `unnest` (a `WHERE` on `v.run_id`, or empty).
fn tasks_sql(tenant: &Tenant, tasks: &[NewTask<'_>], filter: &str) -> Result<Sql, StoreError> {
    let mut ids = Vec::with_capacity(tasks.len());
    let (mut runs, mut names, mut types, mut states) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut deps, mut pending, mut max_attempts, mut policies) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut timeouts, mut nows, mut priorities) = (Vec::new(), Vec::new(), Vec::<i16>::new());
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
        priorities.push(t.priority.rank());
    }
    Ok(Sql::new(
        format!(
            "INSERT INTO tasks (id, tenant_id, run_id, name, task_type, state, depends_on, pending_deps, attempt, \
               max_attempts, retry_policy, timeout_ms, available_at, created_at, updated_at, published_at, priority) \
             SELECT v.id, $1, v.run_id, v.name, v.task_type, v.state, v.deps, v.pending, 0, v.max_attempts, \
               v.policy, v.timeout_ms, v.at, v.at, v.at, CASE WHEN v.state = 'ready' THEN v.at END, v.priority \
             FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[], \
               $9::int[], $10::text[], $11::bigint[], $12::timestamptz[], $13::smallint[]) \
               AS v(id, run_id, name, task_type, state, deps, pending, max_attempts, policy, timeout_ms, at, \
                 priority){filter}"
        ),
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
            priorities.into(),
        ],
    ))
}

/// Events `(run, sequence, event)`; `filter` is appended after the `unnest` (or empty).
pub(super) fn events_sql(tenant: &Tenant, rows: &[(Uuid, i64, &NewEvent)], at: DateTime<Utc>, filter: &str) -> Sql {
    let runs: Vec<Uuid> = rows.iter().map(|e| e.0).collect();
    let seqs: Vec<i64> = rows.iter().map(|e| e.1).collect();
    let kinds: Vec<String> = rows.iter().map(|e| e.2.kind.to_owned()).collect();
    let names: Vec<String> = rows.iter().map(|e| e.2.task_name.clone().unwrap_or_default()).collect();
    // Attempts count from 1: 0 stands for none.
    let attempts: Vec<i32> =
        rows.iter().map(|e| e.2.attempt.map_or(0, |a| i32::try_from(a).unwrap_or(i32::MAX))).collect();
    let details: Vec<String> = rows.iter().map(|e| e.2.detail.to_string()).collect();
    Sql::new(
        format!(
            "INSERT INTO run_events (tenant_id, run_id, sequence, kind, task_name, attempt, detail, created_at) \
             SELECT $1, v.run_id, v.seq, v.kind, NULLIF(v.name, ''), NULLIF(v.attempt, 0), v.detail, $8 \
             FROM unnest($2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::int[], $7::text[]) \
               AS v(run_id, seq, kind, name, attempt, detail){filter}"
        ),
        vec![
            tenant.as_str().into(),
            runs.into(),
            seqs.into(),
            kinds.into(),
            names.into(),
            attempts.into(),
            details.into(),
            at.into(),
        ],
    )
}

fn attempts_sql(tenant: &Tenant, leased: &[task::Model], worker_id: &str) -> Sql {
    let ids: Vec<Uuid> = leased.iter().map(|_| Uuid::now_v7()).collect();
    let tasks: Vec<Uuid> = leased.iter().map(|t| t.id).collect();
    let runs: Vec<Uuid> = leased.iter().map(|t| t.run_id).collect();
    let attempts: Vec<i32> = leased.iter().map(|t| t.attempt).collect();
    let leases: Vec<Uuid> = leased.iter().map(|t| t.lease_id.unwrap_or_default()).collect();
    let started: Vec<DateTime<Utc>> = leased.iter().map(|t| t.updated_at).collect();
    Sql::new(
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
    )
}

/// Inserts new runs with their tasks and first events (`(run, events)`, numbered from 1): one
/// statement on PostgreSQL. Runs whose idempotency key is taken are skipped, with their tasks
/// and events; returns how many runs went in (the caller abandons the transaction when fewer).
pub async fn create_runs<C: ConnectionTrait>(
    c: &C,
    backend: Backend,
    tenant: &Tenant,
    new_runs: &[NewRun<'_>],
    new_tasks: &[NewTask<'_>],
    logs: &[(Uuid, Vec<NewEvent>)],
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    if new_runs.is_empty() {
        return Ok(0);
    }
    if backend == Backend::Sqlite {
        let inserted = runs::insert_many(c, tenant, new_runs).await?;
        if inserted == new_runs.len() as u64 {
            tasks::insert_many(c, tenant, new_tasks).await?;
            events::insert_initial(c, tenant, logs, at).await?;
        }
        return Ok(inserted);
    }
    let rows: Vec<(Uuid, i64, &NewEvent)> =
        logs.iter().flat_map(|(run_id, log)| log.iter().zip(1..).map(move |(e, seq)| (*run_id, seq, e))).collect();
    let only_new = " WHERE v.run_id IN (SELECT id FROM new_runs)";
    let statement = chain(
        vec![
            ("new_runs", runs_sql(tenant, new_runs)),
            ("new_tasks", tasks_sql(tenant, new_tasks, only_new)?),
            ("new_events", events_sql(tenant, &rows, at, only_new)),
        ],
        Sql::new("SELECT count(*) AS n FROM new_runs", Vec::new()),
    );
    #[derive(FromQueryResult)]
    struct Count {
        n: i64,
    }
    let count = Count::find_by_statement(statement.statement()).one(c).await?.map_or(0, |r| r.n);
    u64::try_from(count).map_err(corrupt)
}

/// Records what a lease took: the attempts' starts, the runs' event counters and the
/// `task_leased` events (`(run, first sequence, events)`): one statement on PostgreSQL.
#[allow(clippy::too_many_arguments)]
pub async fn record_leases<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    leased: &[task::Model],
    worker_id: &str,
    changes: &[RunChange],
    logs: &[(Uuid, i64, &[NewEvent])],
    now: super::super::dbtime::DbNow,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if leased.is_empty() {
        return Ok(());
    }
    let backend = now.backend();
    if backend == Backend::Sqlite {
        leases::insert_attempts(c, tenant, leased, worker_id).await?;
        update_runs_rows(c, tenant, changes, now).await?;
        return events::insert_numbered(c, tenant, logs, at).await;
    }
    let rows: Vec<(Uuid, i64, &NewEvent)> = logs
        .iter()
        .flat_map(|(run_id, first, log)| log.iter().zip(*first..).map(move |(e, seq)| (*run_id, seq, e)))
        .collect();
    let statement = chain(
        vec![
            ("attempts", attempts_sql(tenant, leased, worker_id)),
            ("counters", super::updates::run_changes_sql(changes)),
        ],
        events_sql(tenant, &rows, at, ""),
    );
    c.execute_raw(statement.statement()).await?;
    Ok(())
}
