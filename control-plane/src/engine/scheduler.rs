//! The cron scheduler's pass: due ticks of every active schedule fired once (catch-up window, overlap policy), backfills, the leader.
//!
//! Exactly once per tick comes from the database, not from this code being alone: each fire
//! is a trigger carrying the key (schedule id, nominal time), unique in `runs`, and `last_tick`
//! moves only by a conditional update. The advisory-lock leader only saves wasted work.

use super::trigger::TriggerRequest;
use super::{Engine, EngineError};
use crate::domain::cron::CronSchedule;
use crate::domain::flow::{CatchupPolicy, OverlapPolicy};
use crate::domain::records::{ScheduleTick, Tenant};
use crate::domain::schedule::{Backfill, Schedule};
use crate::domain::state::TriggerSource;
use crate::store::{Backend, StoreError, leader, schedules};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use uuid::Uuid;

/// Advisory-lock key of the scheduler's leader ("braid-cron" in ASCII).
pub const SCHEDULER_LOCK: i64 = 0x6272_6169_642d_6372;
/// Schedules looked at per pass.
const SCHEDULES_PER_PASS: u64 = 10_000;
/// Ticks fired per schedule per pass (the rest wait for the next pass).
const TICKS_PER_PASS: usize = 1_000;
/// Missed ticks counted per schedule per pass, for the log.
const MISSED_COUNTED: usize = 100_000;
/// Ticks this recent are on time, not caught up (`latest` fires them all).
const ON_TIME: ChronoDuration = ChronoDuration::seconds(5);
/// Most ticks one backfill may cover.
pub const MAX_BACKFILL_TICKS: usize = 1_000;

/// What one scheduler pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Runs created.
    pub fired: usize,
    /// Ticks handled without a new run: overlap skip, or already fired (by another control plane).
    pub skipped: usize,
    /// Ticks older than the catch-up window, or older than the newest under `latest`.
    pub missed: usize,
}

/// What firing one tick came to.
enum Fired {
    Created(Uuid),
    Existing,
    Skipped,
}

fn micro() -> ChronoDuration {
    ChronoDuration::microseconds(1)
}

impl Engine {
    /// One pass as the scheduler loop runs it: only if this control plane holds the leader
    /// lock (PostgreSQL: a transaction-scoped advisory lock, held for the pass; SQLite: always).
    /// None when another control plane leads.
    pub async fn scheduler_pass(&self) -> Result<Option<PassReport>, EngineError> {
        if self.store.backend() == Backend::Sqlite {
            // One process owns the file (and its one connection, which a held transaction
            // would take from the pass): it always leads.
            return self.fire_due_once().await.map(Some);
        }
        let txn = self.store.begin().await?;
        if !leader::try_lock(&txn, self.store.backend(), SCHEDULER_LOCK).await? {
            return Ok(None);
        }
        let report = self.fire_due_once().await;
        txn.commit().await.map_err(StoreError::from)?;
        report.map(Some)
    }

    /// Fires every due tick of every active schedule, as of the engine's clock. Safe to run on
    /// several control planes at once: each tick still makes one run.
    pub async fn fire_due_once(&self) -> Result<PassReport, EngineError> {
        let now = self.now();
        let mut report = PassReport::default();
        for (tenant, s) in schedules::active(self.store.conn(), now, SCHEDULES_PER_PASS).await? {
            if let Err(e) = self.fire_schedule(&tenant, &s, now, &mut report).await {
                tracing::warn!(schedule = %s.id, name = %s.name, error = %e, "schedule pass failed; next pass retries");
            }
        }
        let count = |n: usize| n as u64;
        self.metrics.engine().cron_ticks(count(report.fired), count(report.skipped), count(report.missed));
        Ok(report)
    }

    async fn fire_schedule(
        &self,
        tenant: &Tenant,
        s: &Schedule,
        now: DateTime<Utc>,
        report: &mut PassReport,
    ) -> Result<(), EngineError> {
        let cron = CronSchedule::parse(&s.cron, &s.timezone)
            .map_err(|e| StoreError::Corrupt(format!("schedule {}: {e}", s.id)))?;
        let mut base = s.last_tick.unwrap_or(s.created_at);
        if let Some(start) = s.start_at {
            base = base.max(start - micro());
        }
        let until = match s.end_at {
            Some(end) => now.min(end - micro()),
            None => now,
        };
        if until <= base {
            return Ok(());
        }
        let window_start = now - ChronoDuration::from_std(s.catchup_window).unwrap_or(ChronoDuration::MAX);
        let mut last = s.last_tick;
        let mut newest_missed = None;
        let mut missed = 0;
        if base < window_start - micro() {
            let old = cron.ticks_between(base, (window_start - micro()).min(until), MISSED_COUNTED);
            missed = old.len();
            newest_missed = old.last().copied();
            base = window_start - micro();
        }
        let mut due = cron.ticks_between(base, until, TICKS_PER_PASS);
        if s.catchup == CatchupPolicy::Latest {
            // Ticks of the last few seconds are on time (a pass that ran a little late sees two
            // of a per-second schedule): all fire. Of the older ones, missed while no control
            // plane fired them, only the newest does, and only if no on-time tick replaces it.
            let on_time = due.partition_point(|t| *t < now - ON_TIME);
            if on_time > 0 {
                let keep_late = usize::from(on_time == due.len());
                missed += on_time - keep_late;
                due.drain(..on_time - keep_late);
            }
        }
        if missed > 0 {
            report.missed += missed;
            tracing::warn!(schedule = %s.id, name = %s.name, missed, "ticks outside the catch-up policy skipped");
        }
        if due.is_empty() {
            // Record the skipped ticks as handled.
            if let Some(t) = newest_missed {
                schedules::advance(self.store.conn(), s.id, last, t).await?;
            }
            return Ok(());
        }
        for tick in due {
            match self.fire_tick(tenant, s, tick, s.overlap).await? {
                Fired::Created(_) => report.fired += 1,
                Fired::Existing | Fired::Skipped => report.skipped += 1,
            }
            if !schedules::advance(self.store.conn(), s.id, last, tick).await? {
                // Another control plane is on this schedule: leave the rest to it.
                return Ok(());
            }
            last = Some(tick);
        }
        Ok(())
    }

    /// Fires one tick under `overlap` (the run of a tick that already has one is returned).
    async fn fire_tick(
        &self,
        tenant: &Tenant,
        s: &Schedule,
        tick: DateTime<Utc>,
        overlap: OverlapPolicy,
    ) -> Result<Fired, EngineError> {
        let db = self.store.conn();
        if schedules::run_of_tick(db, s.id, tick).await?.is_some() {
            return Ok(Fired::Existing);
        }
        // Runs of earlier ticks only: a later tick's run is not "previous", and a run of this
        // very tick (made meanwhile by another control plane) must not be cancelled.
        let open: Vec<_> = schedules::open_runs(db, tenant, s.id)
            .await?
            .into_iter()
            .filter(|r| r.nominal.is_none_or(|n| n < tick))
            .collect();
        let mut after_schedule_runs = false;
        match overlap {
            OverlapPolicy::AllowAll => {}
            OverlapPolicy::Skip => {
                if !open.is_empty() {
                    return Ok(Fired::Skipped);
                }
            }
            OverlapPolicy::BufferOne => {
                if open.iter().any(|r| r.queued) {
                    return Ok(Fired::Skipped);
                }
                after_schedule_runs = true;
            }
            OverlapPolicy::CancelOther => {
                for r in &open {
                    let reason = format!("replaced by the {tick} tick of schedule {:?} (overlap cancel_other)", s.name);
                    // Workers of this control plane holding its leases are told by the cancel.
                    self.cancel_run(tenant, r.id, &reason).await?;
                }
            }
        }
        let req = TriggerRequest {
            workflow_name: s.workflow_name.clone(),
            input_json: s.input_json.clone(),
            source: Some(TriggerSource::Schedule),
            priority: Some(s.priority),
            schedule: Some(ScheduleTick { schedule_id: s.id, nominal: tick }),
            after_schedule_runs,
            ..TriggerRequest::default()
        };
        match self.trigger_run(tenant, &req).await {
            Ok(out) if out.created => Ok(Fired::Created(out.run.run.id)),
            Ok(_) => Ok(Fired::Existing),
            Err(EngineError::Store(e)) => Err(EngineError::Store(e)),
            Err(e) => {
                // The workflow is gone or the input no longer fits it: the tick cannot fire.
                tracing::warn!(schedule = %s.id, name = %s.name, tick = %tick, error = %e, "tick not fired");
                Ok(Fired::Skipped)
            }
        }
    }

    /// Fires the schedule for every tick in `[start, end)` (in the past), each tick through the
    /// scheduler's key: a tick fired before keeps its run.
    pub async fn backfill_schedule(
        &self,
        tenant: &Tenant,
        id: Uuid,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        overlap: OverlapPolicy,
    ) -> Result<Backfill, EngineError> {
        if start >= end {
            return Err(EngineError::invalid("end", "must be after start"));
        }
        if end > self.now() {
            return Err(EngineError::invalid("end", "must not be in the future (backfill fires past ticks)"));
        }
        let s = schedules::get(self.store.conn(), tenant, id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("schedule {id} not found")))?;
        let cron = CronSchedule::parse(&s.cron, &s.timezone)
            .map_err(|e| StoreError::Corrupt(format!("schedule {}: {e}", s.id)))?;
        let ticks = cron.ticks_between(start - micro(), end - micro(), MAX_BACKFILL_TICKS + 1);
        if ticks.len() > MAX_BACKFILL_TICKS {
            return Err(EngineError::invalid(
                "start",
                format!("the range has more than {MAX_BACKFILL_TICKS} ticks; backfill a shorter range at a time"),
            ));
        }
        let mut out =
            Backfill { ticks: u32::try_from(ticks.len()).unwrap_or(u32::MAX), created: 0, run_ids: Vec::new() };
        for tick in ticks {
            if let Fired::Created(run) = self.fire_tick(tenant, &s, tick, overlap).await? {
                out.created += 1;
                out.run_ids.push(run);
            }
        }
        Ok(out)
    }
}
