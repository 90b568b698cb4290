//! The `Executor` trait: serving a task type by other means than an in-process handler, and the two shipped executors.
//!
//! An executor receives what a handler receives (the run input and the [`TaskContext`]) and
//! answers with a JSON output or a [`TaskError`]. Register one with
//! [`WorkerBuilder::executor`](crate::WorkerBuilder::executor); the runtime treats it exactly like
//! a handler (slots, deadline, cancellation, spans, metrics).

mod error;
mod http;
mod outcome;
mod process;

#[cfg(test)]
mod test_support;

pub use error::ExecutorError;
pub use http::{HttpExecutor, HttpExecutorBuilder};
pub use process::{DEFAULT_RETRYABLE_EXIT_CODES, ProcessExecutor, ProcessExecutorBuilder};

use crate::{TaskContext, TaskError};
use serde_json::Value;
use std::future::Future;

/// The most bytes of output (response body, stdout) an executor reads by default: 4 MiB.
///
/// More is a non-retryable `output_too_large` error. The server keeps at most 1 MiB of compact
/// JSON; the slack is for whitespace.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 4 * 1024 * 1024;

/// Runs the attempts of one task type.
///
/// `input` is the run input (the `input` part of the assignment, `null` when absent); the
/// outputs of the task's dependencies are in [`TaskContext::deps_raw`]. The returned future must
/// honour [`TaskContext::cancelled`]: when the token is cancelled (the server cancelled the task,
/// its deadline passed, the lease is lost, or the worker stops) it should stop its work and
/// return soon, typically with [`cancelled_error`].
///
/// ```
/// use braid_worker::{Executor, TaskContext, TaskError};
/// use serde_json::{Value, json};
///
/// struct Constant(Value);
///
/// impl Executor for Constant {
///     async fn execute(&self, _input: Value, _ctx: TaskContext) -> Result<Value, TaskError> {
///         Ok(self.0.clone())
///     }
/// }
///
/// let builder = braid_worker::Worker::builder().executor("constant", Constant(json!({"ok": true})));
/// # let _ = builder;
/// ```
pub trait Executor: Send + Sync + 'static {
    /// Runs one attempt.
    fn execute(&self, input: Value, ctx: TaskContext) -> impl Future<Output = Result<Value, TaskError>> + Send;
}

/// The retryable error of an attempt whose token was cancelled: its type says why (`cancelled`,
/// `timeout`, `lease_expired` or `worker_shutdown`), as for a task cancelled before it started.
pub fn cancelled_error(ctx: &TaskContext) -> TaskError {
    match ctx.cancel_reason() {
        Some(reason) => TaskError::retryable(format!("stopped: {reason}")).with_type(reason.error_type()),
        None => TaskError::retryable("stopped: cancelled").with_type("cancelled"),
    }
}
