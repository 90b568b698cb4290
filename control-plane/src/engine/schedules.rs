//! Schedule use cases: create, read, list, update, pause, resume, delete, with validation and next fire times.

use super::{Engine, EngineError, page};
use crate::domain::cron::CronSchedule;
use crate::domain::records::{Page, Tenant};
use crate::domain::schedule::{
    DEFAULT_CATCHUP_WINDOW, MAX_CATCHUP_WINDOW, MAX_SCHEDULE_NAME, MIN_CATCHUP_WINDOW, Schedule, ScheduleCursor,
    ScheduleSpec, ScheduleView,
};
use crate::domain::validate::{ValidationError, validate_input_json};
use crate::store::{StoreError, schedules};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Fire times shown with a schedule.
pub const NEXT_FIRE_TIMES: usize = 5;

fn field(e: ValidationError) -> EngineError {
    EngineError::invalid(format!("schedule.{}", e.path), e.reason)
}

/// A schedule id from its text form, or an error naming `field`.
pub fn parse_schedule_id(name: &str, text: &str) -> Result<Uuid, EngineError> {
    Uuid::parse_str(text).map_err(|_| EngineError::invalid(name, format!("{text:?} is not a schedule id")))
}

/// The spec's cron schedule, once every field is checked (except that the workflow exists).
pub fn check_spec(spec: &ScheduleSpec) -> Result<CronSchedule, EngineError> {
    let name = spec.name.trim();
    if name.is_empty() || name.len() > MAX_SCHEDULE_NAME || name.chars().any(|c| c.is_control()) {
        return Err(EngineError::invalid(
            "schedule.name",
            format!("must be 1 to {MAX_SCHEDULE_NAME} bytes without control characters"),
        ));
    }
    if spec.workflow_name.trim().is_empty() {
        return Err(EngineError::invalid("schedule.workflow_name", "is required"));
    }
    let cron = CronSchedule::parse(&spec.cron, &spec.timezone).map_err(field)?;
    validate_input_json(&spec.input_json).map_err(field)?;
    if let (Some(s), Some(e)) = (spec.start_at, spec.end_at)
        && s >= e
    {
        return Err(EngineError::invalid("schedule.end_at", "must be after start_at"));
    }
    let window = spec.catchup_window.unwrap_or(DEFAULT_CATCHUP_WINDOW);
    if !(MIN_CATCHUP_WINDOW..=MAX_CATCHUP_WINDOW).contains(&window) {
        return Err(EngineError::invalid(
            "schedule.catchup_window",
            format!("must be between {MIN_CATCHUP_WINDOW:?} and {MAX_CATCHUP_WINDOW:?}"),
        ));
    }
    Ok(cron)
}

fn not_found(id: Uuid) -> EngineError {
    EngineError::NotFound(format!("schedule {id} not found"))
}

fn name_taken(name: &str) -> impl Fn(StoreError) -> EngineError + '_ {
    move |e| match e {
        StoreError::Conflict(_) => EngineError::AlreadyExists(format!("a schedule named {name:?} already exists")),
        other => other.into(),
    }
}

/// The ticks a schedule will fire next after `now` (none while paused or after its end).
pub fn next_fire_times(s: &Schedule, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let Ok(cron) = CronSchedule::parse(&s.cron, &s.timezone) else { return Vec::new() };
    if s.paused {
        return Vec::new();
    }
    let mut from = s.last_tick.map_or(now, |t| t.max(now));
    if let Some(start) = s.start_at {
        from = from.max(start - chrono::Duration::microseconds(1));
    }
    cron.next_n(from, NEXT_FIRE_TIMES).into_iter().filter(|t| s.end_at.is_none_or(|end| *t < end)).collect()
}

impl Engine {
    fn view(&self, schedule: Schedule) -> ScheduleView {
        let next_fire_times = next_fire_times(&schedule, self.now());
        ScheduleView { schedule, next_fire_times }
    }

    async fn require_workflow(&self, tenant: &Tenant, name: &str) -> Result<(), EngineError> {
        match self.get_workflow(tenant, name, None).await {
            Ok(_) => Ok(()),
            // As for any id the caller's tenant does not have: NOT_FOUND, whether another tenant has it or not.
            Err(EngineError::NotFound(_)) => {
                Err(EngineError::NotFound(format!("schedule.workflow_name: no workflow named {name:?}")))
            }
            Err(e) => Err(e),
        }
    }

    /// Creates a schedule. It first fires at its first tick after now (or after `start_at`).
    pub async fn create_schedule(&self, tenant: &Tenant, spec: &ScheduleSpec) -> Result<ScheduleView, EngineError> {
        check_spec(spec)?;
        self.require_workflow(tenant, &spec.workflow_name).await?;
        self.admit_schedule(tenant).await?;
        let now = self.now();
        // Ticks before creation are not caught up (backfill fires past ticks).
        let s = schedule_from(spec, Uuid::now_v7(), Some(now), now, now);
        schedules::insert(self.store.conn(), tenant, &s).await.map_err(name_taken(&s.name))?;
        Ok(self.view(s))
    }

    pub async fn get_schedule(&self, tenant: &Tenant, id: Uuid) -> Result<ScheduleView, EngineError> {
        let s = schedules::get(self.store.conn(), tenant, id).await?.ok_or_else(|| not_found(id))?;
        Ok(self.view(s))
    }

    /// Schedules by name, one page at a time.
    pub async fn list_schedules(
        &self,
        tenant: &Tenant,
        workflow_name: Option<&str>,
        page_size: u32,
        page_token: &str,
    ) -> Result<Page<ScheduleView, String>, EngineError> {
        let cursor: Option<ScheduleCursor> = page::decode(page_token)?;
        let limit = page::size(page_size);
        let rows = schedules::list(self.store.conn(), tenant, workflow_name, cursor.as_ref(), limit + 1).await?;
        let p = page::split(rows, limit, |s| page::encode(&ScheduleCursor { name: s.name.clone(), id: s.id }));
        Ok(Page { items: p.items.into_iter().map(|s| self.view(s)).collect(), next: p.next })
    }

    /// Replaces the schedule's settings. Ticks before now are not caught up under the new settings.
    pub async fn update_schedule(
        &self,
        tenant: &Tenant,
        id: Uuid,
        spec: &ScheduleSpec,
    ) -> Result<ScheduleView, EngineError> {
        check_spec(spec)?;
        self.require_workflow(tenant, &spec.workflow_name).await?;
        let old = schedules::get(self.store.conn(), tenant, id).await?.ok_or_else(|| not_found(id))?;
        let now = self.now();
        let last_tick = Some(old.last_tick.map_or(now, |t| t.max(now)));
        let s = schedule_from(spec, old.id, last_tick, old.created_at, now);
        if !schedules::update(self.store.conn(), tenant, &s).await.map_err(name_taken(&s.name))? {
            return Err(not_found(id));
        }
        self.get_schedule(tenant, id).await
    }

    /// Pauses (no ticks fire) or resumes the schedule. Ticks that passed while it was paused
    /// are not caught up.
    pub async fn set_schedule_paused(
        &self,
        tenant: &Tenant,
        id: Uuid,
        paused: bool,
    ) -> Result<ScheduleView, EngineError> {
        let now = self.now();
        let old = schedules::get(self.store.conn(), tenant, id).await?.ok_or_else(|| not_found(id))?;
        let last_tick = (!paused).then(|| old.last_tick.map_or(now, |t| t.max(now)));
        if !schedules::set_paused(self.store.conn(), tenant, id, paused, last_tick, now).await? {
            return Err(not_found(id));
        }
        self.get_schedule(tenant, id).await
    }

    /// Deletes the schedule; the runs it made stay.
    pub async fn delete_schedule(&self, tenant: &Tenant, id: Uuid) -> Result<(), EngineError> {
        if schedules::delete(self.store.conn(), tenant, id).await? { Ok(()) } else { Err(not_found(id)) }
    }
}

/// The schedule `spec` describes, with its identity and bookkeeping.
fn schedule_from(
    spec: &ScheduleSpec,
    id: Uuid,
    last_tick: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Schedule {
    Schedule {
        id,
        name: spec.name.trim().to_owned(),
        workflow_name: spec.workflow_name.clone(),
        cron: spec.cron.trim().to_owned(),
        timezone: spec.timezone.trim().to_owned(),
        input_json: if spec.input_json.trim().is_empty() { "{}".to_owned() } else { spec.input_json.clone() },
        overlap: spec.overlap,
        paused: spec.paused,
        start_at: spec.start_at,
        end_at: spec.end_at,
        catchup_window: spec.catchup_window.unwrap_or(DEFAULT_CATCHUP_WINDOW),
        catchup: spec.catchup,
        priority: spec.priority,
        last_tick,
        created_at,
        updated_at: now,
    }
}
