//! Running one assignment: waiting for a slot, calling the handler, watching its deadline.

use crate::context::{Attempt, CancelSignal};
use crate::handler::{BoxedHandler, parse_envelope};
use crate::stats::Counters;
use crate::traces::{self, HandlerSpan};
use crate::worker::Shared;
use crate::{CancelReason, TaskContext, TaskError, TaskRef, WorkerEvent};
use braid_proto::v1 as pb;
use futures::FutureExt;
use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::Instrument;

use super::Config;

/// What one spawned assignment needs.
pub(crate) struct Job {
    pub(crate) assignment: pb::TaskAssignment,
    pub(crate) task: TaskRef,
    pub(crate) handler: Option<BoxedHandler>,
    pub(crate) signal: CancelSignal,
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) config: Arc<Config>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) worker_id: String,
}

/// The result of one assignment.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) result: Result<String, TaskError>,
    /// Whether the handler was called.
    pub(crate) started: bool,
}

impl Finished {
    fn not_started(error: TaskError) -> Self {
        Self { result: Err(error), started: false }
    }

    fn cancelled_before_start(reason: Option<CancelReason>) -> Self {
        let reason = reason.unwrap_or(CancelReason::Shutdown);
        let error = TaskError::retryable(format!("not started: {reason}"))
            .with_type(reason.error_type())
            .with_details(serde_json::json!({"started": false}));
        Self::not_started(error)
    }
}

/// Waits for a slot (unless cancelled or past the deadline first), then runs the handler; its
/// deadline cancels its token but the handler still decides when to return.
pub(crate) async fn execute(job: Job) -> Finished {
    let Job { assignment, task, handler, signal, slots, config, shared, worker_id } = job;
    let deadline = assignment.deadline.and_then(|ts| SystemTime::try_from(ts).ok());
    let deadline_at = deadline.map(instant_of);
    let timer = tokio::time::sleep_until(deadline_at.unwrap_or_else(far_future));
    tokio::pin!(timer);
    if deadline_at.is_some_and(|at| at <= Instant::now()) {
        signal.cancel(CancelReason::DeadlineExceeded);
    }

    let permit = tokio::select! {
        biased;
        () = signal.token().cancelled() => return Finished::cancelled_before_start(signal.reason()),
        () = &mut timer, if deadline_at.is_some() => {
            signal.cancel(CancelReason::DeadlineExceeded);
            return Finished::cancelled_before_start(signal.reason());
        }
        permit = slots.acquire_owned() => match permit {
            Ok(permit) => permit,
            Err(_) => return Finished::cancelled_before_start(Some(CancelReason::Shutdown)),
        },
    };

    let Some(handler) = handler else {
        let error = TaskError::retryable(format!("this worker has no handler for task type {:?}", task.task_type))
            .with_type("unknown_task_type");
        return Finished::not_started(error);
    };
    let envelope = match parse_envelope(&assignment.input_json) {
        Ok(envelope) => envelope,
        Err(error) => return Finished::not_started(error),
    };
    let attempt = Attempt {
        task_id: assignment.task_id,
        run_id: assignment.run_id,
        workflow_name: assignment.workflow_name,
        workflow_version: assignment.workflow_version,
        task_name: assignment.task_name,
        task_type: assignment.task_type,
        attempt: assignment.attempt,
        max_attempts: assignment.max_attempts,
        lease_id: assignment.lease_id,
        deadline,
        trace_context: assignment.trace_context,
        worker_id,
    };
    let span = tracing::info_span!(
        "task",
        task_id = %attempt.task_id,
        attempt = attempt.attempt,
        task_type = %attempt.task_type,
        run_id = %attempt.run_id,
        traceparent = attempt.trace_context.get("traceparent").map(String::as_str).unwrap_or_default(),
    );
    let otel = config.traces.handler(&HandlerSpan {
        trace_context: &attempt.trace_context,
        task_id: &attempt.task_id,
        run_id: &attempt.run_id,
        task_name: &attempt.task_name,
        task_type: &attempt.task_type,
        attempt: attempt.attempt,
    });
    let ctx = TaskContext::new(attempt, envelope.deps, signal.clone());
    let prepared = match std::panic::catch_unwind(AssertUnwindSafe(|| handler(envelope.input))) {
        Ok(Ok(prepared)) => prepared,
        Ok(Err(error)) => {
            traces::end(&otel, Some(error.message()));
            return Finished::not_started(error);
        }
        Err(panic) => {
            let error = panicked(panic.as_ref());
            traces::end(&otel, Some(error.message()));
            return Finished::not_started(error);
        }
    };

    Counters::bump(&shared.counters.started);
    let handler_started = Instant::now();
    config.emit(WorkerEvent::TaskStarted { task: task.clone() });
    let call = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let _current = otel.clone().attach();
        prepared(ctx)
    }));
    let result = match call {
        Err(panic) => Err(panicked(panic.as_ref())),
        Ok(fut) => {
            let fut = opentelemetry::trace::FutureExt::with_context(fut.instrument(span), otel.clone());
            let fut = AssertUnwindSafe(fut).catch_unwind();
            tokio::pin!(fut);
            let mut deadline_passed = false;
            let outcome = loop {
                tokio::select! {
                    outcome = &mut fut => break outcome,
                    () = &mut timer, if deadline_at.is_some() && !deadline_passed => {
                        deadline_passed = true;
                        tracing::info!(task_id = %task.task_id, attempt = task.attempt, "deadline passed: cancelling the handler");
                        signal.cancel(CancelReason::DeadlineExceeded);
                    }
                }
            };
            outcome.unwrap_or_else(|panic| Err(panicked(panic.as_ref())))
        }
    };
    drop(permit);
    shared.counters.metrics.handler(&task.task_type, handler_started.elapsed().as_secs_f64());
    traces::end(&otel, result.as_ref().err().map(TaskError::message));
    Finished { result, started: true }
}

fn panicked(payload: &(dyn Any + Send)) -> TaskError {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string payload".to_owned());
    TaskError::retryable(format!("handler panicked: {what}")).with_type("panic")
}

/// The monotonic instant of a wall-clock time (now when it has passed).
fn instant_of(at: SystemTime) -> Instant {
    let left = at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
    Instant::now() + left
}

pub(crate) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(30 * 365 * 24 * 3600)
}
