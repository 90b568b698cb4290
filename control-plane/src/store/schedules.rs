//! Queries on schedules: CRUD, pages by name, active schedules, conditional tick advance, a schedule's open runs.

use super::entity::{run, schedule};
use super::{StoreError, corrupt};
use crate::domain::flow::Priority;
use crate::domain::records::Tenant;
use crate::domain::schedule::{Schedule, ScheduleCursor};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use std::time::Duration;
use uuid::Uuid;

fn to_record(m: schedule::Model) -> Result<Schedule, StoreError> {
    Ok(Schedule {
        id: m.id,
        name: m.name,
        workflow_name: m.workflow_name,
        cron: m.cron,
        timezone: m.timezone,
        input_json: m.input,
        overlap: m.overlap_policy.parse().map_err(corrupt)?,
        paused: m.paused,
        start_at: m.start_at,
        end_at: m.end_at,
        catchup_window: Duration::from_millis(u64::try_from(m.catchup_window_ms).map_err(corrupt)?),
        catchup: m.catchup_policy.parse().map_err(corrupt)?,
        priority: Priority::from_rank(m.priority),
        last_tick: m.last_tick,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

fn window_ms(s: &Schedule) -> i64 {
    i64::try_from(s.catchup_window.as_millis()).unwrap_or(i64::MAX)
}

/// Inserts `s`; a taken name is [`StoreError::Conflict`].
pub async fn insert<C: ConnectionTrait>(c: &C, tenant: &Tenant, s: &Schedule) -> Result<(), StoreError> {
    schedule::ActiveModel {
        id: Set(s.id),
        tenant_id: Set(tenant.0.clone()),
        name: Set(s.name.clone()),
        workflow_name: Set(s.workflow_name.clone()),
        cron: Set(s.cron.clone()),
        timezone: Set(s.timezone.clone()),
        input: Set(s.input_json.clone()),
        overlap_policy: Set(s.overlap.as_str().to_owned()),
        paused: Set(s.paused),
        start_at: Set(s.start_at),
        end_at: Set(s.end_at),
        created_at: Set(s.created_at),
        updated_at: Set(s.updated_at),
        catchup_window_ms: Set(window_ms(s)),
        catchup_policy: Set(s.catchup.as_str().to_owned()),
        last_tick: Set(s.last_tick),
        priority: Set(s.priority.rank()),
    }
    .insert(c)
    .await?;
    Ok(())
}

/// Writes every field of `s` but `created_at`. False if gone.
pub async fn update<C: ConnectionTrait>(c: &C, tenant: &Tenant, s: &Schedule) -> Result<bool, StoreError> {
    let res = schedule::Entity::update_many()
        .col_expr(schedule::Column::Name, Expr::value(s.name.clone()))
        .col_expr(schedule::Column::WorkflowName, Expr::value(s.workflow_name.clone()))
        .col_expr(schedule::Column::Cron, Expr::value(s.cron.clone()))
        .col_expr(schedule::Column::Timezone, Expr::value(s.timezone.clone()))
        .col_expr(schedule::Column::Input, Expr::value(s.input_json.clone()))
        .col_expr(schedule::Column::OverlapPolicy, Expr::value(s.overlap.as_str()))
        .col_expr(schedule::Column::Paused, Expr::value(s.paused))
        .col_expr(schedule::Column::StartAt, Expr::value(s.start_at))
        .col_expr(schedule::Column::EndAt, Expr::value(s.end_at))
        .col_expr(schedule::Column::CatchupWindowMs, Expr::value(window_ms(s)))
        .col_expr(schedule::Column::CatchupPolicy, Expr::value(s.catchup.as_str()))
        .col_expr(schedule::Column::Priority, Expr::value(s.priority.rank()))
        .col_expr(schedule::Column::UpdatedAt, Expr::value(s.updated_at))
        .col_expr(schedule::Column::LastTick, Expr::value(s.last_tick))
        .filter(schedule::Column::Id.eq(s.id))
        .filter(schedule::Column::TenantId.eq(tenant.as_str()))
        .exec(c)
        .await?;
    Ok(res.rows_affected > 0)
}

/// Sets `paused` (and `last_tick`, when given). False if the schedule is gone.
pub async fn set_paused<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    id: Uuid,
    paused: bool,
    last_tick: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut q = schedule::Entity::update_many();
    if let Some(t) = last_tick {
        q = q.col_expr(schedule::Column::LastTick, Expr::value(Some(t)));
    }
    let res = q
        .col_expr(schedule::Column::Paused, Expr::value(paused))
        .col_expr(schedule::Column::UpdatedAt, Expr::value(now))
        .filter(schedule::Column::Id.eq(id))
        .filter(schedule::Column::TenantId.eq(tenant.as_str()))
        .exec(c)
        .await?;
    Ok(res.rows_affected > 0)
}

/// Deletes the schedule; its runs keep their `schedule_id`. False if it was not there.
pub async fn delete<C: ConnectionTrait>(c: &C, tenant: &Tenant, id: Uuid) -> Result<bool, StoreError> {
    let res = schedule::Entity::delete_many()
        .filter(schedule::Column::Id.eq(id))
        .filter(schedule::Column::TenantId.eq(tenant.as_str()))
        .exec(c)
        .await?;
    Ok(res.rows_affected > 0)
}

/// The schedule `id` in `tenant`.
pub async fn get<C: ConnectionTrait>(c: &C, tenant: &Tenant, id: Uuid) -> Result<Option<Schedule>, StoreError> {
    schedule::Entity::find_by_id(id)
        .filter(schedule::Column::TenantId.eq(tenant.as_str()))
        .one(c)
        .await?
        .map(to_record)
        .transpose()
}

/// Schedules by name (then id), after `cursor`, at most `limit`.
pub async fn list<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    workflow_name: Option<&str>,
    cursor: Option<&ScheduleCursor>,
    limit: u64,
) -> Result<Vec<Schedule>, StoreError> {
    let mut q = schedule::Entity::find().filter(schedule::Column::TenantId.eq(tenant.as_str()));
    if let Some(w) = workflow_name {
        q = q.filter(schedule::Column::WorkflowName.eq(w));
    }
    if let Some(cur) = cursor {
        q = q.filter(Condition::any().add(schedule::Column::Name.gt(cur.name.as_str())).add(
            Condition::all().add(schedule::Column::Name.eq(cur.name.as_str())).add(schedule::Column::Id.gt(cur.id)),
        ));
    }
    q.order_by_asc(schedule::Column::Name)
        .order_by_asc(schedule::Column::Id)
        .limit(limit)
        .all(c)
        .await?
        .into_iter()
        .map(to_record)
        .collect()
}

/// Every unpaused schedule not ended before `now`, of every tenant, at most `limit`.
pub async fn active<C: ConnectionTrait>(
    c: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<(Tenant, Schedule)>, StoreError> {
    schedule::Entity::find()
        .filter(schedule::Column::Paused.eq(false))
        .filter(Condition::any().add(schedule::Column::EndAt.is_null()).add(schedule::Column::EndAt.gt(now)))
        .order_by_asc(schedule::Column::Id)
        .limit(limit)
        .all(c)
        .await?
        .into_iter()
        .map(|m| {
            let tenant = Tenant(m.tenant_id.clone());
            to_record(m).map(|s| (tenant, s))
        })
        .collect()
}

/// Moves `last_tick` from `old` to `new` unless another control plane moved it first
/// (`WHERE last_tick IS NOT DISTINCT FROM old`). True if this call moved it.
pub async fn advance<C: ConnectionTrait>(
    c: &C,
    id: Uuid,
    old: Option<DateTime<Utc>>,
    new: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let same = match old {
        Some(t) => schedule::Column::LastTick.eq(t),
        None => schedule::Column::LastTick.is_null(),
    };
    let res = schedule::Entity::update_many()
        .col_expr(schedule::Column::LastTick, Expr::value(Some(new)))
        .filter(schedule::Column::Id.eq(id))
        .filter(same)
        .exec(c)
        .await?;
    Ok(res.rows_affected > 0)
}

/// A queued or running run of a schedule.
#[derive(Debug, Clone, Copy)]
pub struct OpenRun {
    pub id: Uuid,
    pub queued: bool,
    /// The tick that made it.
    pub nominal: Option<DateTime<Utc>>,
}

/// The schedule's runs that are queued or running (found through the `uq_runs_schedule_tick`
/// index, whose first column is `schedule_id`).
pub async fn open_runs<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    schedule_id: Uuid,
) -> Result<Vec<OpenRun>, StoreError> {
    let rows: Vec<(Uuid, String, Option<DateTime<Utc>>)> = run::Entity::find()
        .select_only()
        .column(run::Column::Id)
        .column(run::Column::State)
        .column(run::Column::ScheduledFor)
        .filter(run::Column::ScheduleId.eq(schedule_id))
        .filter(run::Column::TenantId.eq(tenant.as_str()))
        .filter(run::Column::State.is_in(["queued", "running"]))
        .into_tuple()
        .all(c)
        .await?;
    Ok(rows.into_iter().map(|(id, state, nominal)| OpenRun { id, queued: state == "queued", nominal }).collect())
}

/// The run made by the tick (schedule, nominal), if any.
pub async fn run_of_tick<C: ConnectionTrait>(
    c: &C,
    schedule_id: Uuid,
    nominal: DateTime<Utc>,
) -> Result<Option<Uuid>, StoreError> {
    Ok(run::Entity::find()
        .select_only()
        .column(run::Column::Id)
        .filter(run::Column::ScheduleId.eq(schedule_id))
        .filter(run::Column::ScheduledFor.eq(nominal))
        .into_tuple::<Uuid>()
        .one(c)
        .await?)
}
