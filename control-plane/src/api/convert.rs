//! Conversions between braid.v1 messages and domain types.

use crate::domain::definition::{RetrySpec, RunSettings, TaskDefinition, WorkflowDefinition};
use crate::domain::payload_ref::PayloadRef;
use crate::domain::records::{
    Run, RunDetail, RunEvent, Task, TaskAttempt, TaskError, WorkflowSummary, WorkflowVersion,
};
use crate::domain::state::{RunState, TaskState, TriggerSource};
use crate::domain::validate::ValidationError;
use braid_proto::v1 as pb;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// A proto timestamp from a chrono instant.
pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0) }
}

/// A chrono instant from a proto timestamp, or an error naming `field`.
pub fn from_timestamp(field: &str, t: &prost_types::Timestamp) -> Result<DateTime<Utc>, ValidationError> {
    u32::try_from(t.nanos)
        .ok()
        .and_then(|n| DateTime::from_timestamp(t.seconds, n))
        .ok_or_else(|| ValidationError { path: field.to_owned(), reason: "not a valid timestamp".to_owned() })
}

/// An optional request timestamp as an instant; a malformed one is an invalid argument naming `field`.
pub fn optional_timestamp(
    field: &str,
    t: Option<prost_types::Timestamp>,
) -> Result<Option<DateTime<Utc>>, crate::engine::EngineError> {
    t.map(|t| from_timestamp(field, &t))
        .transpose()
        .map_err(|e| crate::engine::EngineError::InvalidArgument { field: e.path, reason: e.reason })
}

/// A proto duration from a std duration.
pub fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

fn from_duration(path: &str, d: Option<&prost_types::Duration>, errors: &mut Vec<ValidationError>) -> Option<Duration> {
    let d = d?;
    match (u64::try_from(d.seconds), u32::try_from(d.nanos)) {
        (Ok(s), Ok(n)) if n < 1_000_000_000 => Some(Duration::new(s, n)),
        _ => {
            errors
                .push(ValidationError { path: path.to_owned(), reason: "must be a non-negative duration".to_owned() });
            None
        }
    }
}

fn retry_spec(path: &str, r: Option<&pb::RetryPolicy>, errors: &mut Vec<ValidationError>) -> Option<RetrySpec> {
    let r = r?;
    Some(RetrySpec {
        max_attempts: r.max_attempts,
        initial_backoff: from_duration(&format!("{path}.initial_backoff"), r.initial_backoff.as_ref(), errors),
        multiplier: r.multiplier,
        max_backoff: from_duration(&format!("{path}.max_backoff"), r.max_backoff.as_ref(), errors),
        jitter: r.jitter,
    })
}

fn retry_policy(r: &RetrySpec) -> pb::RetryPolicy {
    pb::RetryPolicy {
        max_attempts: r.max_attempts,
        initial_backoff: r.initial_backoff.map(duration),
        multiplier: r.multiplier,
        max_backoff: r.max_backoff.map(duration),
        jitter: r.jitter,
    }
}

/// A domain definition from the wire; malformed durations are reported like validation errors.
pub fn definition(d: pb::WorkflowDefinition) -> Result<WorkflowDefinition, Vec<ValidationError>> {
    let mut errors = Vec::new();
    let settings = d.settings.unwrap_or_default();
    let settings = RunSettings {
        default_retry: retry_spec("settings.default_retry", settings.default_retry.as_ref(), &mut errors),
        default_task_timeout: from_duration(
            "settings.default_task_timeout",
            settings.default_task_timeout.as_ref(),
            &mut errors,
        ),
        max_concurrent_runs: settings.max_concurrent_runs,
        concurrency_policy: super::flow::concurrency_policy_from_proto(
            "settings.concurrency_policy",
            settings.concurrency_policy,
        )
        .unwrap_or_else(|_| {
            errors.push(ValidationError {
                path: "settings.concurrency_policy".into(),
                reason: format!("unknown value {}", settings.concurrency_policy),
            });
            Default::default()
        }),
        max_per_key: settings.max_per_key,
        retention: from_duration("settings.retention", settings.retention.as_ref(), &mut errors),
    };
    let tasks = d
        .tasks
        .into_iter()
        .enumerate()
        .map(|(i, t)| TaskDefinition {
            retry: retry_spec(&format!("tasks[{i}].retry"), t.retry.as_ref(), &mut errors),
            timeout: from_duration(&format!("tasks[{i}].timeout"), t.timeout.as_ref(), &mut errors),
            name: t.name,
            task_type: t.task_type,
            depends_on: t.depends_on,
            description: t.description,
        })
        .collect();
    if errors.is_empty() {
        Ok(WorkflowDefinition { name: d.name, description: d.description, tasks, settings })
    } else {
        Err(errors)
    }
}

/// The wire form of a domain definition.
pub fn definition_to_proto(d: &WorkflowDefinition) -> pb::WorkflowDefinition {
    pb::WorkflowDefinition {
        name: d.name.clone(),
        description: d.description.clone(),
        tasks: d
            .tasks
            .iter()
            .map(|t| pb::TaskDefinition {
                name: t.name.clone(),
                task_type: t.task_type.clone(),
                depends_on: t.depends_on.clone(),
                retry: t.retry.as_ref().map(retry_policy),
                timeout: t.timeout.map(duration),
                description: t.description.clone(),
            })
            .collect(),
        settings: Some(pb::RunSettings {
            default_retry: d.settings.default_retry.as_ref().map(retry_policy),
            default_task_timeout: d.settings.default_task_timeout.map(duration),
            max_concurrent_runs: d.settings.max_concurrent_runs,
            concurrency_policy: super::flow::concurrency_policy(d.settings.concurrency_policy).into(),
            max_per_key: d.settings.max_per_key,
            retention: d.settings.retention.map(duration),
        }),
    }
}

pub fn workflow(w: &WorkflowVersion) -> pb::Workflow {
    pb::Workflow {
        name: w.name.clone(),
        version: w.version,
        definition: Some(definition_to_proto(&w.definition)),
        content_hash: w.content_hash.clone(),
        created_at: Some(timestamp(w.created_at)),
    }
}

pub fn workflow_summary(w: &WorkflowSummary) -> pb::WorkflowSummary {
    pb::WorkflowSummary {
        name: w.name.clone(),
        latest_version: w.latest_version,
        description: w.description.clone(),
        task_count: w.task_count,
        updated_at: Some(timestamp(w.updated_at)),
    }
}

pub fn validation_error(e: &ValidationError) -> pb::ValidationError {
    pb::ValidationError { path: e.path.clone(), reason: e.reason.clone() }
}

pub fn run_state(s: RunState) -> pb::RunState {
    match s {
        RunState::Queued => pb::RunState::Queued,
        RunState::Running => pb::RunState::Running,
        RunState::Succeeded => pb::RunState::Succeeded,
        RunState::Failed => pb::RunState::Failed,
        RunState::Cancelled => pb::RunState::Cancelled,
    }
}

/// A domain run state from the wire; None for UNSPECIFIED or unknown values.
pub fn run_state_from_proto(value: i32) -> Option<RunState> {
    match pb::RunState::try_from(value).ok()? {
        pb::RunState::Unspecified => None,
        pb::RunState::Queued => Some(RunState::Queued),
        pb::RunState::Running => Some(RunState::Running),
        pb::RunState::Succeeded => Some(RunState::Succeeded),
        pb::RunState::Failed => Some(RunState::Failed),
        pb::RunState::Cancelled => Some(RunState::Cancelled),
    }
}

pub fn task_state(s: TaskState) -> pb::TaskState {
    match s {
        TaskState::Pending => pb::TaskState::Pending,
        TaskState::Ready => pb::TaskState::Ready,
        TaskState::Leased => pb::TaskState::Leased,
        TaskState::Succeeded => pb::TaskState::Succeeded,
        TaskState::Failed => pb::TaskState::Failed,
        TaskState::Cancelled => pb::TaskState::Cancelled,
        TaskState::Skipped => pb::TaskState::Skipped,
    }
}

pub fn trigger_source(s: TriggerSource) -> pb::TriggerSource {
    match s {
        TriggerSource::Api => pb::TriggerSource::Api,
        TriggerSource::Schedule => pb::TriggerSource::Schedule,
        TriggerSource::Redrive => pb::TriggerSource::Redrive,
    }
}

pub fn task_error(e: &TaskError) -> pb::TaskError {
    pb::TaskError {
        message: e.message.clone(),
        r#type: e.kind.clone(),
        retryable: e.retryable,
        details_json: e.details.clone().unwrap_or_default(),
    }
}

fn attempt(a: &TaskAttempt) -> pb::TaskAttempt {
    pb::TaskAttempt {
        attempt: a.attempt,
        lease_id: a.lease_id.to_string(),
        worker_id: a.worker_id.clone().unwrap_or_default(),
        started_at: Some(timestamp(a.started_at)),
        finished_at: a.finished_at.map(timestamp),
        outcome: a.outcome.clone().unwrap_or_default(),
        error: a.error.as_ref().map(task_error),
    }
}

pub fn task(t: &Task) -> pb::Task {
    pb::Task {
        id: t.id.to_string(),
        name: t.name.clone(),
        task_type: t.task_type.clone(),
        state: task_state(t.state).into(),
        depends_on: t.depends_on.clone(),
        attempt: t.attempt,
        max_attempts: t.max_attempts,
        output_json: t.output.clone().unwrap_or_default(),
        last_error: t.last_error.as_ref().map(task_error),
        available_at: Some(timestamp(t.available_at)),
        created_at: Some(timestamp(t.created_at)),
        finished_at: t.finished_at.map(timestamp),
        attempts: t.attempts.iter().map(attempt).collect(),
        output_ref: t.output_ref.as_ref().map(payload_ref),
    }
}

/// A reference as clients see it (the object's key stays inside the control plane).
pub fn payload_ref(r: &PayloadRef) -> pb::PayloadRef {
    pb::PayloadRef { size: r.size, sha256: r.sha256.clone() }
}

pub fn run(r: &Run, tasks: &[Task]) -> pb::Run {
    pb::Run {
        id: r.id.to_string(),
        workflow_name: r.workflow_name.clone(),
        workflow_version: r.workflow_version,
        state: run_state(r.state).into(),
        input_json: r.input.clone(),
        output_json: r.output.clone().unwrap_or_default(),
        idempotency_key: r.idempotency_key.clone().unwrap_or_default(),
        trigger_source: trigger_source(r.trigger_source).into(),
        created_at: Some(timestamp(r.created_at)),
        started_at: r.started_at.map(timestamp),
        finished_at: r.finished_at.map(timestamp),
        tasks: tasks.iter().map(task).collect(),
        reason: r.reason.clone().unwrap_or_default(),
        priority: super::flow::priority(r.priority).into(),
        concurrency_key: r.concurrency_key.clone().unwrap_or_default(),
        schedule_id: r.schedule.map(|s| s.schedule_id.to_string()).unwrap_or_default(),
        scheduled_for: r.schedule.map(|s| timestamp(s.nominal)),
        input_ref: r.input_ref.as_ref().map(payload_ref),
        output_ref: r.output_ref.as_ref().map(payload_ref),
    }
}

pub fn run_detail(d: &RunDetail) -> pb::Run {
    run(&d.run, &d.tasks)
}

pub fn run_event(e: &RunEvent) -> pb::RunEvent {
    pb::RunEvent {
        run_id: e.run_id.to_string(),
        sequence: e.sequence,
        kind: e.kind.clone(),
        task_name: e.task_name.clone().unwrap_or_default(),
        attempt: e.attempt.unwrap_or(0),
        at: Some(timestamp(e.at)),
        detail_json: e.detail.clone(),
    }
}
