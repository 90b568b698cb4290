//! Schedule records: what a cron schedule is, as stored and returned, and the bounds on its settings.

use super::flow::{CatchupPolicy, OverlapPolicy, Priority};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

/// Catch-up window when none is given.
pub const DEFAULT_CATCHUP_WINDOW: Duration = Duration::from_secs(600);
/// Shortest catch-up window accepted.
pub const MIN_CATCHUP_WINDOW: Duration = Duration::from_secs(1);
/// Longest catch-up window accepted.
pub const MAX_CATCHUP_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// Longest schedule name.
pub const MAX_SCHEDULE_NAME: usize = 128;

/// What a user says about a schedule (create and update).
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSpec {
    pub name: String,
    pub workflow_name: String,
    pub cron: String,
    /// IANA name; empty means UTC.
    pub timezone: String,
    /// JSON; empty means `{}`.
    pub input_json: String,
    pub overlap: OverlapPolicy,
    pub paused: bool,
    pub start_at: Option<DateTime<Utc>>,
    pub end_at: Option<DateTime<Utc>>,
    /// None means [`DEFAULT_CATCHUP_WINDOW`].
    pub catchup_window: Option<Duration>,
    pub catchup: CatchupPolicy,
    pub priority: Priority,
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub id: Uuid,
    pub name: String,
    pub workflow_name: String,
    pub cron: String,
    pub timezone: String,
    pub input_json: String,
    pub overlap: OverlapPolicy,
    pub paused: bool,
    pub start_at: Option<DateTime<Utc>>,
    pub end_at: Option<DateTime<Utc>>,
    pub catchup_window: Duration,
    pub catchup: CatchupPolicy,
    pub priority: Priority,
    /// Nominal time of the newest tick handled (fired or skipped).
    pub last_tick: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A schedule with its next fire times, as the API returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleView {
    pub schedule: Schedule,
    pub next_fire_times: Vec<DateTime<Utc>>,
}

/// Position after the last item of a page of schedules (by name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleCursor {
    pub name: String,
    pub id: Uuid,
}

/// What a backfill did.
#[derive(Debug, Clone, PartialEq)]
pub struct Backfill {
    /// Ticks in the range.
    pub ticks: u32,
    /// Runs created (ticks fired before keep their run).
    pub created: u32,
    pub run_ids: Vec<Uuid>,
}
