//! `ProcessExecutor`: runs a command with the task document on stdin and reads its output from stdout; the exit code says whether a failure is retryable.

mod group;
mod io;
mod run;

use super::{DEFAULT_MAX_OUTPUT_BYTES, Executor, ExecutorError};
use crate::{TaskContext, TaskError};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

/// The exit codes retried when none are configured: 75 (`EX_TEMPFAIL`).
pub const DEFAULT_RETRYABLE_EXIT_CODES: &[i32] = &[75];

/// Serves a task type by running a command per attempt.
///
/// The process gets `{"input": …, "deps": {…}}` on stdin (then end of file), the attempt's facts
/// in `BRAID_TASK_ID`, `BRAID_RUN_ID`, `BRAID_WORKFLOW`, `BRAID_TASK_NAME`, `BRAID_TASK_TYPE`,
/// `BRAID_ATTEMPT`, `BRAID_MAX_ATTEMPTS`, `BRAID_DEADLINE` (RFC 3339, when the task has one),
/// the run's `TRACEPARENT`/`TRACESTATE`, the configured variables, and the rest of the worker's
/// environment less the removed variables. It prints one JSON document on stdout.
///
/// | ending | result |
/// | --- | --- |
/// | exit 0, stdout is JSON | stdout is the output |
/// | exit 0, stdout is not JSON | not retryable, `bad_output` |
/// | an exit code in the retryable list (default: 75) | retryable, `exit_code` |
/// | any other exit code | not retryable, `exit_code` |
/// | killed by a signal | retryable, `signal` |
/// | still running at the timeout | killed; retryable, `timeout` |
/// | stdout larger than the output bound | killed; not retryable, `output_too_large` |
/// | the program cannot be started | `spawn`; not retryable when it is missing or not executable |
///
/// Error messages end with the last 4 KiB of stderr. On Unix the process leads a process group of
/// its own; when the attempt is cancelled, times out, or the process exits, the whole group is
/// killed (`SIGKILL`), so the task's processes never outlive it.
#[derive(Debug, Clone)]
pub struct ProcessExecutor {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    env_remove: Vec<String>,
    current_dir: Option<PathBuf>,
    timeout: Option<Duration>,
    retryable_exit_codes: BTreeSet<i32>,
    max_output_bytes: usize,
}

/// Settings of a [`ProcessExecutor`]; checked by [`ProcessExecutorBuilder::build`].
#[derive(Debug, Clone)]
pub struct ProcessExecutorBuilder {
    inner: ProcessExecutor,
}

impl ProcessExecutor {
    /// Starts the settings of an executor that runs `program` (a path, or a name looked up in
    /// `PATH`).
    pub fn builder(program: impl Into<String>) -> ProcessExecutorBuilder {
        ProcessExecutorBuilder {
            inner: Self {
                program: program.into(),
                args: Vec::new(),
                env: Vec::new(),
                env_remove: Vec::new(),
                current_dir: None,
                timeout: None,
                retryable_exit_codes: DEFAULT_RETRYABLE_EXIT_CODES.iter().copied().collect(),
                max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            },
        }
    }

    /// The command as shown in messages: the program and its arguments.
    pub fn command_line(&self) -> String {
        std::iter::once(&self.program).chain(&self.args).map(String::as_str).collect::<Vec<_>>().join(" ")
    }

    /// The executor's own time limit, if set.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The exit codes retried, in order.
    pub fn retryable_exit_codes(&self) -> impl Iterator<Item = i32> + '_ {
        self.retryable_exit_codes.iter().copied()
    }

    /// The directory the process runs in, if set.
    pub fn current_dir(&self) -> Option<&std::path::Path> {
        self.current_dir.as_deref()
    }
}

impl Executor for ProcessExecutor {
    async fn execute(&self, input: Value, ctx: TaskContext) -> Result<Value, TaskError> {
        run::run(self, &input, &ctx).await
    }
}

impl ProcessExecutorBuilder {
    /// Adds an argument.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.inner.args.push(arg.into());
        self
    }

    /// Adds arguments.
    #[must_use]
    pub fn args<A: Into<String>>(mut self, args: impl IntoIterator<Item = A>) -> Self {
        self.inner.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable of the process.
    #[must_use]
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.inner.env.push((key.into(), value.into()));
        self
    }

    /// Keeps a variable of the worker's environment from the process (e.g. the worker's token).
    #[must_use]
    pub fn env_remove(mut self, key: impl Into<String>) -> Self {
        self.inner.env_remove.push(key.into());
        self
    }

    /// The directory the process runs in (default: the worker's).
    #[must_use]
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.inner.current_dir = Some(dir.into());
        self
    }

    /// Kills the process when it runs longer than this (default: no limit of its own; the task's
    /// deadline and cancellation still apply).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.inner.timeout = Some(timeout);
        self
    }

    /// The exit codes that mean "try again" (default [`DEFAULT_RETRYABLE_EXIT_CODES`]); they
    /// replace the default.
    #[must_use]
    pub fn retryable_exit_codes(mut self, codes: impl IntoIterator<Item = i32>) -> Self {
        self.inner.retryable_exit_codes = codes.into_iter().collect();
        self
    }

    /// The most bytes of stdout read (default [`DEFAULT_MAX_OUTPUT_BYTES`]).
    #[must_use]
    pub fn max_output_bytes(mut self, bytes: usize) -> Self {
        self.inner.max_output_bytes = bytes;
        self
    }

    /// Checks the settings; the program itself is looked for only when a task runs.
    pub fn build(self) -> Result<ProcessExecutor, ExecutorError> {
        let inner = self.inner;
        if inner.program.is_empty() {
            return Err(ExecutorError::EmptyCommand);
        }
        if let Some(dir) = &inner.current_dir
            && !dir.is_dir()
        {
            return Err(ExecutorError::NotADirectory(dir.clone()));
        }
        if inner.timeout.is_some_and(|t| t.is_zero()) {
            return Err(ExecutorError::Zero("timeout"));
        }
        if inner.max_output_bytes == 0 {
            return Err(ExecutorError::Zero("max_output_bytes"));
        }
        if inner.retryable_exit_codes.contains(&0) {
            return Err(ExecutorError::RetryableZero);
        }
        Ok(inner)
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
