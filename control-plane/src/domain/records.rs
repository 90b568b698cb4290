//! Plain records the engine reads and returns: workflows, runs, tasks, attempts, events.

use crate::domain::definition::WorkflowDefinition;
use crate::domain::flow::Priority;
use crate::domain::payload_ref::PayloadRef;
use crate::domain::state::{RunState, TaskState, TriggerSource};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The tenant every row belongs to. Until tokens exist, everything is in [`Tenant::default_tenant`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tenant(pub String);

impl Tenant {
    pub const DEFAULT: &'static str = "default";

    pub fn default_tenant() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One stored, immutable version of a workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowVersion {
    pub name: String,
    pub version: u32,
    /// Normalized: every default written out.
    pub definition: WorkflowDefinition,
    pub content_hash: String,
    pub created_at: DateTime<Utc>,
}

/// A workflow name with its latest version.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowSummary {
    pub name: String,
    pub latest_version: u32,
    pub description: String,
    pub task_count: u32,
    pub updated_at: DateTime<Utc>,
}

/// One execution of a workflow version.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub id: Uuid,
    pub workflow_name: String,
    pub workflow_version: u32,
    pub state: RunState,
    /// The input document; empty when it is kept in object storage (`input_ref`).
    pub input: String,
    /// Where the input is kept when it was larger than the inline limit.
    pub input_ref: Option<PayloadRef>,
    /// `{"task": output}` of the tasks nothing depends on, once succeeded; `None` when it is
    /// assembled from its tasks' payloads instead (`output_ref`).
    pub output: Option<String>,
    /// Set when the output is assembled from its sink tasks' payloads (some kept in object
    /// storage, or the whole larger than the inline limit): its size ([`PayloadRef::assembled`]).
    pub output_ref: Option<PayloadRef>,
    pub idempotency_key: Option<String>,
    pub trigger_source: TriggerSource,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub priority: Priority,
    pub concurrency_key: Option<String>,
    /// The cron tick that made the run, if a schedule did.
    pub schedule: Option<ScheduleTick>,
}

/// One tick of a cron schedule: the schedule and the tick's nominal fire time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScheduleTick {
    pub schedule_id: Uuid,
    pub nominal: DateTime<Utc>,
}

/// A failure as reported by a worker or recorded by the engine (stored as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskError {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub retryable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

/// One attempt of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskAttempt {
    pub attempt: u32,
    pub lease_id: Uuid,
    pub worker_id: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub error: Option<TaskError>,
}

/// One task of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: Uuid,
    pub run_id: Uuid,
    pub name: String,
    pub task_type: String,
    pub state: TaskState,
    pub depends_on: Vec<String>,
    pub attempt: u32,
    pub max_attempts: u32,
    /// The output document once succeeded; `None` when it is kept in object storage (`output_ref`).
    pub output: Option<String>,
    /// Where the output is kept when it was larger than the inline limit.
    pub output_ref: Option<PayloadRef>,
    pub last_error: Option<TaskError>,
    pub available_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub attempts: Vec<TaskAttempt>,
}

/// A run with its tasks, as GetRun returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDetail {
    pub run: Run,
    pub tasks: Vec<Task>,
}

/// One entry of a run's event log.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEvent {
    pub run_id: Uuid,
    pub sequence: u64,
    pub kind: String,
    pub task_name: Option<String>,
    pub attempt: Option<u32>,
    pub at: DateTime<Utc>,
    pub detail: String,
}

/// An event of the all-runs feed: the log entry with its global `id`, the feed's position.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEvent {
    pub id: u64,
    pub event: RunEvent,
}

/// Filters of ListRuns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    pub workflow_name: Option<String>,
    pub states: Vec<RunState>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// Only runs made by this schedule.
    pub schedule_id: Option<Uuid>,
    pub trigger_source: Option<TriggerSource>,
    pub idempotency_key: Option<String>,
    /// Only this run (a search by id that keeps the other filters).
    pub run_id: Option<Uuid>,
}

/// Position after the last item of a page of runs (newest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunCursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    /// Where the next page starts, or None on the last page.
    pub next: Option<C>,
}
