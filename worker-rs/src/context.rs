//! `TaskContext`: what a handler knows about its attempt (ids, deadline, dependencies, cancellation).

use crate::TaskError;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;
use tokio_util::sync::CancellationToken;

/// Why a handler's cancellation token was cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelReason {
    /// The server sent `CancelTask` (e.g. the run was cancelled), with its reason.
    Server(String),
    /// The attempt's deadline (execution timeout) passed.
    DeadlineExceeded,
    /// The worker could not heartbeat for a whole lease TTL: the lease has probably expired.
    LeaseLost,
    /// The worker is shutting down and the drain deadline passed (or it was aborted).
    Shutdown,
}

impl CancelReason {
    /// The `TaskError.type` reported for a task cancelled for this reason before it started.
    pub(crate) fn error_type(&self) -> &'static str {
        match self {
            Self::Server(_) => "cancelled",
            Self::DeadlineExceeded => "timeout",
            Self::LeaseLost => "lease_expired",
            Self::Shutdown => "worker_shutdown",
        }
    }
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Server(reason) if reason.is_empty() => f.write_str("cancelled by the server"),
            Self::Server(reason) => write!(f, "cancelled by the server: {reason}"),
            Self::DeadlineExceeded => f.write_str("the attempt's deadline passed"),
            Self::LeaseLost => f.write_str("the lease could not be extended for a whole lease TTL"),
            Self::Shutdown => f.write_str("the worker is shutting down"),
        }
    }
}

/// A cancellation token with the reason of its first cancellation.
#[derive(Debug, Clone, Default)]
pub(crate) struct CancelSignal {
    token: CancellationToken,
    reason: Arc<OnceLock<CancelReason>>,
}

impl CancelSignal {
    pub(crate) fn cancel(&self, reason: CancelReason) {
        // The first reason wins; later cancellations change nothing.
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }

    pub(crate) fn reason(&self) -> Option<CancelReason> {
        self.reason.get().cloned()
    }
}

/// The facts of one assignment, copied into the context.
#[derive(Debug)]
pub(crate) struct Attempt {
    pub(crate) task_id: String,
    pub(crate) run_id: String,
    pub(crate) workflow_name: String,
    pub(crate) workflow_version: u32,
    pub(crate) task_name: String,
    pub(crate) task_type: String,
    pub(crate) attempt: u32,
    pub(crate) max_attempts: u32,
    pub(crate) lease_id: String,
    pub(crate) deadline: Option<SystemTime>,
    pub(crate) trace_context: HashMap<String, String>,
    pub(crate) worker_id: String,
}

/// What a handler knows about the attempt it runs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TaskContext {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    attempt: Attempt,
    deps: Map<String, Value>,
    signal: CancelSignal,
}

impl TaskContext {
    pub(crate) fn new(attempt: Attempt, deps: Map<String, Value>, signal: CancelSignal) -> Self {
        Self { inner: Arc::new(Inner { attempt, deps, signal }) }
    }

    /// The task's id (a UUID).
    pub fn task_id(&self) -> &str {
        &self.inner.attempt.task_id
    }

    /// The run's id (a UUID).
    pub fn run_id(&self) -> &str {
        &self.inner.attempt.run_id
    }

    /// The workflow's name.
    pub fn workflow_name(&self) -> &str {
        &self.inner.attempt.workflow_name
    }

    /// The workflow version the run executes.
    pub fn workflow_version(&self) -> u32 {
        self.inner.attempt.workflow_version
    }

    /// The task's name in the workflow.
    pub fn task_name(&self) -> &str {
        &self.inner.attempt.task_name
    }

    /// The task type (the handler's registration name).
    pub fn task_type(&self) -> &str {
        &self.inner.attempt.task_type
    }

    /// This attempt's number: 1 for the first.
    pub fn attempt(&self) -> u32 {
        self.inner.attempt.attempt
    }

    /// Attempts in total, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.inner.attempt.max_attempts
    }

    /// Whether a retryable failure of this attempt will not be retried.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt() >= self.max_attempts()
    }

    /// The lease (fencing token) of this attempt.
    pub fn lease_id(&self) -> &str {
        &self.inner.attempt.lease_id
    }

    /// When the attempt must be finished (the task's execution timeout), if the server set one.
    /// The token is cancelled when it passes.
    pub fn deadline(&self) -> Option<SystemTime> {
        self.inner.attempt.deadline
    }

    /// The run's W3C trace context (`traceparent`, `tracestate`).
    pub fn trace_context(&self) -> &HashMap<String, String> {
        &self.inner.attempt.trace_context
    }

    /// The server's id of the stream (session) that received this assignment.
    pub fn worker_id(&self) -> &str {
        &self.inner.attempt.worker_id
    }

    /// The output of the dependency task `name`, deserialized. Fails with a non-retryable
    /// `bad_input` error when the task has no such dependency or the output does not fit `T`.
    pub fn deps<T: DeserializeOwned>(&self, name: &str) -> Result<T, TaskError> {
        let Some(raw) = self.inner.deps.get(name) else {
            return Err(
                TaskError::fatal(format!("task has no dependency output named {name:?}")).with_type("bad_input")
            );
        };
        T::deserialize(raw).map_err(|e| {
            TaskError::fatal(format!("output of dependency {name:?} does not fit: {e}")).with_type("bad_input")
        })
    }

    /// The output of the dependency task `name`, as JSON.
    pub fn dep_raw(&self, name: &str) -> Option<&Value> {
        self.inner.deps.get(name)
    }

    /// Every dependency output by task name (the `deps` object of the assignment).
    pub fn deps_raw(&self) -> &Map<String, Value> {
        &self.inner.deps
    }

    /// A clone of the attempt's cancellation token.
    pub fn cancellation(&self) -> CancellationToken {
        self.inner.signal.token().clone()
    }

    /// Whether the attempt has been cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.inner.signal.token().is_cancelled()
    }

    /// Completes when the attempt is cancelled.
    pub async fn cancelled(&self) {
        self.inner.signal.token().cancelled().await;
    }

    /// Why the attempt was cancelled, once it has been.
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        self.inner.signal.reason()
    }
}
