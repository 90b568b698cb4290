//! Queries on runs: creation with idempotency keys, lookup, newest-first listing.

use super::entity::run;
use super::{StoreError, corrupt};
use crate::domain::flow::Priority;
use crate::domain::payload_ref::Stored;
use crate::domain::records::{Run, RunCursor, RunFilter, ScheduleTick, Tenant};
use crate::domain::state::{RunState, TriggerSource};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TryInsertResult,
};
use uuid::Uuid;

/// A run about to be created.
#[derive(Debug)]
pub struct NewRun<'a> {
    pub id: Uuid,
    pub workflow_name: &'a str,
    pub workflow_version: u32,
    pub state: RunState,
    pub input: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub input_hash: &'a str,
    pub trigger_source: TriggerSource,
    /// How many events the run starts with (numbered 1..=events by `events::insert_initial`).
    pub events: i64,
    pub now: DateTime<Utc>,
    pub priority: Priority,
    pub concurrency_key: Option<&'a str>,
    pub schedule: Option<ScheduleTick>,
    /// Queued runs wait in `run_gates`: see [`crate::store::gates`].
    pub gated: bool,
    /// Why a queued run waits.
    pub reason: Option<&'a str>,
    /// The W3C `traceparent` of the span that triggered it (None when traces are off).
    pub trace_context: Option<&'a str>,
}

/// A stored run plus the hash of its input, for idempotency checks.
#[derive(Debug, Clone)]
pub struct StoredRun {
    pub run: Run,
    pub input_hash: Option<String>,
}

pub(crate) fn to_record(m: run::Model) -> Result<StoredRun, StoreError> {
    let (input, input_ref) = Stored::decode(m.input).map_err(corrupt)?.split();
    let (output, output_ref) = match m.output {
        Some(text) => Stored::decode(text).map_err(corrupt)?.split(),
        None => (None, None),
    };
    Ok(StoredRun {
        run: Run {
            id: m.id,
            workflow_name: m.workflow_name,
            workflow_version: u32::try_from(m.workflow_version).map_err(corrupt)?,
            state: m.state.parse().map_err(corrupt)?,
            input: input.unwrap_or_default(),
            input_ref,
            output,
            output_ref,
            idempotency_key: m.idempotency_key,
            trigger_source: m.trigger_source.parse().map_err(corrupt)?,
            reason: m.reason,
            created_at: m.created_at,
            started_at: m.started_at,
            finished_at: m.finished_at,
            priority: Priority::from_rank(m.priority),
            concurrency_key: m.concurrency_key,
            schedule: m
                .schedule_id
                .zip(m.scheduled_for)
                .map(|(schedule_id, nominal)| ScheduleTick { schedule_id, nominal }),
        },
        input_hash: m.input_hash,
    })
}

fn new_model(tenant: &Tenant, r: &NewRun<'_>) -> Result<run::ActiveModel, StoreError> {
    let started_at = match r.state {
        RunState::Running => Some(r.now),
        RunState::Queued | RunState::Succeeded | RunState::Failed | RunState::Cancelled => None,
    };
    Ok(run::ActiveModel {
        id: Set(r.id),
        tenant_id: Set(tenant.0.clone()),
        workflow_name: Set(r.workflow_name.to_owned()),
        workflow_version: Set(i32::try_from(r.workflow_version).map_err(corrupt)?),
        state: Set(r.state.as_str().to_owned()),
        input: Set(r.input.to_owned()),
        output: Set(None),
        idempotency_key: Set(r.idempotency_key.map(str::to_owned)),
        input_hash: Set(Some(r.input_hash.to_owned())),
        trigger_source: Set(r.trigger_source.as_str().to_owned()),
        reason: Set(r.reason.map(str::to_owned)),
        next_event_seq: Set(r.events),
        created_at: Set(r.now),
        started_at: Set(started_at),
        finished_at: Set(None),
        updated_at: Set(r.now),
        priority: Set(r.priority.rank()),
        concurrency_key: Set(r.concurrency_key.map(str::to_owned)),
        schedule_id: Set(r.schedule.map(|s| s.schedule_id)),
        scheduled_for: Set(r.schedule.map(|s| s.nominal)),
        gated: Set(r.gated),
        trace_context: Set(r.trace_context.map(str::to_owned)),
    })
}

/// Runs per insert statement (17 bind parameters each, well under PostgreSQL's 65,535).
const RUNS_PER_STATEMENT: usize = 1_000;

/// Inserts runs in multi-row statements, skipping those whose idempotency key is taken;
/// returns how many were inserted (fewer than `runs.len()` when a key was taken meanwhile).
pub async fn insert_many<C: ConnectionTrait>(c: &C, tenant: &Tenant, runs: &[NewRun<'_>]) -> Result<u64, StoreError> {
    let mut inserted = 0;
    for chunk in runs.chunks(RUNS_PER_STATEMENT) {
        let models = chunk.iter().map(|r| new_model(tenant, r)).collect::<Result<Vec<_>, _>>()?;
        let res = run::Entity::insert_many(models).on_conflict_do_nothing().exec_without_returning(c).await?;
        inserted += match res {
            TryInsertResult::Inserted(n) => n,
            TryInsertResult::Conflicted | TryInsertResult::Empty => 0,
        };
    }
    Ok(inserted)
}

/// The runs holding any of the idempotency keys `keys` (workflow name, key), in one query.
pub async fn by_idempotency_keys<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    keys: &[(&str, &str)],
) -> Result<Vec<StoredRun>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut names: Vec<&str> = keys.iter().map(|(w, _)| *w).collect();
    names.sort_unstable();
    names.dedup();
    let rows = run::Entity::find()
        .filter(run::Column::TenantId.eq(tenant.as_str()))
        .filter(run::Column::WorkflowName.is_in(names))
        .filter(run::Column::IdempotencyKey.is_in(keys.iter().map(|(_, k)| *k)))
        .all(c)
        .await?;
    rows.into_iter()
        .filter(|m| keys.iter().any(|(w, k)| m.workflow_name == *w && m.idempotency_key.as_deref() == Some(*k)))
        .map(to_record)
        .collect()
}

/// The runs that cron ticks among `ticks` made (at most one each: the key is unique).
pub async fn by_schedule_ticks<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    ticks: &[ScheduleTick],
) -> Result<Vec<StoredRun>, StoreError> {
    if ticks.is_empty() {
        return Ok(Vec::new());
    }
    let any = ticks.iter().fold(Condition::any(), |cond, t| {
        cond.add(
            Condition::all()
                .add(run::Column::ScheduleId.eq(t.schedule_id))
                .add(run::Column::ScheduledFor.eq(t.nominal)),
        )
    });
    run::Entity::find()
        .filter(run::Column::TenantId.eq(tenant.as_str()))
        .filter(any)
        .all(c)
        .await?
        .into_iter()
        .map(to_record)
        .collect()
}

/// The run `id` in `tenant`.
pub async fn get<C: ConnectionTrait>(c: &C, tenant: &Tenant, id: Uuid) -> Result<Option<StoredRun>, StoreError> {
    run::Entity::find_by_id(id)
        .filter(run::Column::TenantId.eq(tenant.as_str()))
        .one(c)
        .await?
        .map(to_record)
        .transpose()
}

/// Runs newest first (by creation time, then id), after `cursor`, at most `limit`.
pub async fn list<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    filter: &RunFilter,
    cursor: Option<&RunCursor>,
    limit: u64,
) -> Result<Vec<Run>, StoreError> {
    let mut q = run::Entity::find().filter(run::Column::TenantId.eq(tenant.as_str()));
    if let Some(w) = &filter.workflow_name {
        q = q.filter(run::Column::WorkflowName.eq(w.as_str()));
    }
    if !filter.states.is_empty() {
        q = q.filter(run::Column::State.is_in(filter.states.iter().map(|s| s.as_str())));
    }
    if let Some(t) = filter.created_after {
        q = q.filter(run::Column::CreatedAt.gte(t));
    }
    if let Some(s) = filter.schedule_id {
        q = q.filter(run::Column::ScheduleId.eq(s));
    }
    if let Some(t) = filter.created_before {
        q = q.filter(run::Column::CreatedAt.lt(t));
    }
    if let Some(s) = filter.trigger_source {
        q = q.filter(run::Column::TriggerSource.eq(s.as_str()));
    }
    if let Some(k) = &filter.idempotency_key {
        q = q.filter(run::Column::IdempotencyKey.eq(k.as_str()));
    }
    if let Some(id) = filter.run_id {
        q = q.filter(run::Column::Id.eq(id));
    }
    if let Some(cur) = cursor {
        q = q.filter(
            Condition::any()
                .add(run::Column::CreatedAt.lt(cur.created_at))
                .add(Condition::all().add(run::Column::CreatedAt.eq(cur.created_at)).add(run::Column::Id.lt(cur.id))),
        );
    }
    q.order_by_desc(run::Column::CreatedAt)
        .order_by_desc(run::Column::Id)
        .limit(limit)
        .all(c)
        .await?
        .into_iter()
        .map(|m| to_record(m).map(|s| s.run))
        .collect()
}

/// The runs among `ids`.
pub async fn get_many<C: ConnectionTrait>(c: &C, tenant: &Tenant, ids: &[Uuid]) -> Result<Vec<StoredRun>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    run::Entity::find()
        .filter(run::Column::TenantId.eq(tenant.as_str()))
        .filter(run::Column::Id.is_in(ids.iter().copied()))
        .all(c)
        .await?
        .into_iter()
        .map(to_record)
        .collect()
}
