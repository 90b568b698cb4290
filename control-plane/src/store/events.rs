//! Queries on the run event log: appends with per-run monotonic sequence numbers, reads after a sequence or a global id.

use super::dbtime::DbNow;
use super::entity::{run, run_event};
use super::{StoreError, corrupt};
use crate::domain::records::{FeedEvent, RunEvent, Tenant};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QueryOrder,
    QuerySelect, RelationTrait,
};
use std::time::Duration;
use uuid::Uuid;

/// An event about to be appended.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: &'static str,
    pub task_name: Option<String>,
    pub attempt: Option<u32>,
    pub detail: serde_json::Value,
}

impl NewEvent {
    pub fn run(kind: &'static str, detail: serde_json::Value) -> Self {
        Self { kind, task_name: None, attempt: None, detail }
    }

    pub fn task(kind: &'static str, task_name: &str, attempt: Option<u32>, detail: serde_json::Value) -> Self {
        Self { kind, task_name: Some(task_name.to_owned()), attempt, detail }
    }
}

/// Appends `events` to the log of `run_id`, numbering them after the run's last sequence.
/// Reserving the numbers locks the run row, so concurrent appenders to one run serialize.
pub async fn append<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    run_id: Uuid,
    events: &[NewEvent],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let n = i64::try_from(events.len()).map_err(corrupt)?;
    let updated = run::Entity::update_many()
        .col_expr(run::Column::NextEventSeq, Expr::col(run::Column::NextEventSeq).add(n))
        .filter(run::Column::Id.eq(run_id))
        .filter(run::Column::TenantId.eq(tenant.as_str()))
        .exec_with_returning(c)
        .await?;
    let last = updated.first().ok_or_else(|| corrupt(format!("no run {run_id} to append events to")))?.next_event_seq;
    let first = last - n + 1;
    let models = events.iter().zip(first..).map(|(e, seq)| model(tenant, run_id, seq, e, now)).collect();
    insert_models(c, models).await
}

/// Events per insert statement (8 bind parameters each).
const EVENTS_PER_STATEMENT: usize = 4_000;

fn model(tenant: &Tenant, run_id: Uuid, sequence: i64, e: &NewEvent, now: DateTime<Utc>) -> run_event::ActiveModel {
    run_event::ActiveModel {
        tenant_id: Set(tenant.0.clone()),
        run_id: Set(run_id),
        sequence: Set(sequence),
        kind: Set(e.kind.to_owned()),
        task_name: Set(e.task_name.clone()),
        attempt: Set(e.attempt.map(|a| i32::try_from(a).unwrap_or(i32::MAX))),
        detail: Set(e.detail.to_string()),
        created_at: Set(now),
        ..Default::default()
    }
}

async fn insert_models<C: ConnectionTrait>(c: &C, models: Vec<run_event::ActiveModel>) -> Result<(), StoreError> {
    let mut models = models.into_iter().peekable();
    while models.peek().is_some() {
        let chunk: Vec<_> = models.by_ref().take(EVENTS_PER_STATEMENT).collect();
        run_event::Entity::insert_many(chunk).exec_without_returning(c).await?;
    }
    Ok(())
}

/// The first events of new runs, numbered from 1, in multi-row statements: each run was
/// inserted with `next_event_seq` equal to its number of events, so nothing is reserved.
pub async fn insert_initial<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    logs: &[(Uuid, Vec<NewEvent>)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let numbered: Vec<(Uuid, i64, &[NewEvent])> = logs.iter().map(|(run, log)| (*run, 1, log.as_slice())).collect();
    insert_numbered(c, tenant, &numbered, now).await
}

/// Events of several runs whose sequence numbers the caller reserved under the run locks it
/// holds: `(run, first sequence, events)`, in multi-row statements.
pub async fn insert_numbered<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    logs: &[(Uuid, i64, &[NewEvent])],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let models = logs
        .iter()
        .flat_map(|(run_id, first, log)| {
            log.iter().zip(*first..).map(move |(e, seq)| model(tenant, *run_id, seq, e, now))
        })
        .collect();
    insert_models(c, models).await
}

/// Events of `run_id` with a sequence above `after`, oldest first, at most `limit`.
pub async fn after<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    run_id: Uuid,
    after: u64,
    limit: u64,
) -> Result<Vec<RunEvent>, StoreError> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    run_event::Entity::find()
        .filter(run_event::Column::TenantId.eq(tenant.as_str()))
        .filter(run_event::Column::RunId.eq(run_id))
        .filter(run_event::Column::Sequence.gt(after))
        .order_by_asc(run_event::Column::Sequence)
        .limit(limit)
        .all(c)
        .await?
        .into_iter()
        .map(event)
        .collect()
}

fn event(m: run_event::Model) -> Result<RunEvent, StoreError> {
    Ok(RunEvent {
        run_id: m.run_id,
        sequence: u64::try_from(m.sequence).map_err(corrupt)?,
        kind: m.kind,
        task_name: m.task_name,
        attempt: m.attempt.map(u32::try_from).transpose().map_err(corrupt)?,
        at: m.created_at,
        detail: m.detail,
    })
}

/// Which events a read of the all-runs feed may see: those stamped more than `settle` before
/// `now` (the database clock on PostgreSQL), or all committed ones.
#[derive(Debug, Clone, Copy)]
pub enum Settled {
    Before {
        now: DbNow,
        settle: Duration,
    },
    /// PostgreSQL: inserted (`run_events.inserted_at`, the server's clock) `margin` before both
    /// now and the start of the oldest transaction that is still writing: such an event's id is
    /// below every id that any transaction in flight can still commit.
    BeforeWriters {
        margin: Duration,
    },
    All,
}

impl Settled {
    fn condition(self) -> Condition {
        match self {
            Settled::Before { now, settle } => {
                Condition::all().add(Expr::col((run_event::Entity, run_event::Column::CreatedAt)).lt(now.minus(settle)))
            }
            Settled::BeforeWriters { margin } => Condition::all().add(Expr::cust_with_values(
                "run_events.inserted_at < LEAST(clock_timestamp(), COALESCE((SELECT min(a.xact_start) \
                 FROM pg_stat_activity a WHERE a.backend_xid IS NOT NULL AND a.pid <> pg_backend_pid()), \
                 'infinity'::timestamptz)) - make_interval(secs => $1)",
                [margin.as_secs_f64()],
            )),
            Settled::All => Condition::all(),
        }
    }
}

/// Events of the tenant's runs (of `workflow` only, if given) with a global id above `after`
/// and `settled`, in id order, at most `limit`.
pub async fn since<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    workflow: Option<&str>,
    after: u64,
    settled: Settled,
    limit: u64,
) -> Result<Vec<FeedEvent>, StoreError> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let mut q = run_event::Entity::find()
        .filter(run_event::Column::TenantId.eq(tenant.as_str()))
        .filter(run_event::Column::Id.gt(after))
        .filter(settled.condition());
    if let Some(name) = workflow {
        q = q
            .join(JoinType::InnerJoin, run_event::Relation::Run.def())
            .filter(run::Column::TenantId.eq(tenant.as_str()))
            .filter(run::Column::WorkflowName.eq(name));
    }
    q.order_by_asc(run_event::Column::Id)
        .limit(limit)
        .all(c)
        .await?
        .into_iter()
        .map(|m| Ok(FeedEvent { id: u64::try_from(m.id).map_err(corrupt)?, event: event(m)? }))
        .collect()
}

/// The largest global id of the tenant's `settled` events (0: none): where a feed that starts
/// "now" begins.
pub async fn last_settled_id<C: ConnectionTrait>(c: &C, tenant: &Tenant, settled: Settled) -> Result<u64, StoreError> {
    let last = run_event::Entity::find()
        .filter(run_event::Column::TenantId.eq(tenant.as_str()))
        .filter(settled.condition())
        .order_by_desc(run_event::Column::Id)
        .one(c)
        .await?;
    last.map_or(Ok(0), |m| u64::try_from(m.id).map_err(corrupt))
}
