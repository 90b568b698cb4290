//! One attempt of a `ProcessExecutor`: spawn, feed, read, wait or kill, and the mapping of how the process ended to a result.

use super::ProcessExecutor;
use super::group::ProcessGroup;
use super::io::{STDERR_TAIL_BYTES, Stdout, read_stderr_tail, read_stdout, write_stdin};
use crate::executor::cancelled_error;
use crate::executor::outcome::{
    attempt_fields, parse_output, request_document, tail, timed_out, too_large, trace_fields,
};
use crate::{TaskContext, TaskError};
use serde_json::{Value, json};
use std::process::{ExitStatus, Stdio};
use tokio::process::Command;

/// Why the attempt stopped before the process ended.
enum Stop {
    Cancelled,
    TimedOut,
}

pub(super) async fn run(exec: &ProcessExecutor, input: &Value, ctx: &TaskContext) -> Result<Value, TaskError> {
    if ctx.is_cancelled() {
        return Err(cancelled_error(ctx));
    }
    let mut child = command(exec, ctx).spawn().map_err(|e| spawn_error(exec, &e))?;
    let group = ProcessGroup::led_by(child.id());
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let document = request_document(input, ctx);
    let ended = {
        let io = async {
            let wait = async {
                let status = child.wait().await;
                // What the process left behind dies with it (and lets the pipes reach their end).
                group.kill();
                status
            };
            let (status, out, err, ()) = tokio::join!(
                wait,
                read_stdout(stdout, exec.max_output_bytes, &group),
                read_stderr_tail(stderr),
                write_stdin(stdin, document),
            );
            (status, out, err)
        };
        let timer = tokio::time::sleep(exec.timeout.unwrap_or_default());
        tokio::select! {
            biased;
            () = ctx.cancelled() => Err(Stop::Cancelled),
            () = timer, if exec.timeout.is_some() => Err(Stop::TimedOut),
            ended = io => Ok(ended),
        }
    };
    let (status, stdout, stderr) = match ended {
        Ok(ended) => ended,
        Err(stop) => {
            group.kill();
            // Reaps the child (kill_on_drop would also kill it, but not wait for it).
            if let Err(error) = child.kill().await {
                tracing::warn!(%error, command = %exec.command_line(), "cannot kill the process");
            }
            group.finish();
            return Err(match stop {
                Stop::Cancelled => cancelled_error(ctx),
                Stop::TimedOut => timed_out(&format!("`{}`", exec.command_line()), exec.timeout.unwrap_or_default()),
            });
        }
    };
    group.finish();
    let status = status.map_err(|e| {
        TaskError::retryable(format!("cannot wait for `{}`: {e}", exec.command_line())).with_type("spawn")
    })?;
    ending(exec, status, stdout, &stderr)
}

fn command(exec: &ProcessExecutor, ctx: &TaskContext) -> Command {
    let mut command = Command::new(&exec.program);
    command.args(&exec.args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    for key in &exec.env_remove {
        command.env_remove(key);
    }
    for (name, value) in attempt_fields(ctx) {
        command.env(format!("BRAID_{}", name.to_ascii_uppercase().replace('-', "_")), value);
    }
    for (name, value) in trace_fields(ctx) {
        command.env(name.to_ascii_uppercase(), value);
    }
    command.envs(exec.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &exec.current_dir {
        command.current_dir(dir);
    }
    #[cfg(unix)]
    command.process_group(0);
    command
}

fn spawn_error(exec: &ProcessExecutor, error: &std::io::Error) -> TaskError {
    let message = format!("cannot start `{}`: {error}", exec.command_line());
    match error.kind() {
        // Trying again will not install the program or make it executable.
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => TaskError::fatal(message),
        _ => TaskError::retryable(message),
    }
    .with_type("spawn")
}

/// The result of a process that ended by itself (or was killed for its output's size).
fn ending(exec: &ProcessExecutor, status: ExitStatus, stdout: Stdout, stderr: &[u8]) -> Result<Value, TaskError> {
    let command = exec.command_line();
    let stdout = match stdout {
        Stdout::Complete(bytes) => bytes,
        Stdout::TooLarge => return Err(too_large(&format!("stdout of `{command}`"), exec.max_output_bytes)),
        Stdout::Failed(error) => {
            return Err(TaskError::retryable(format!("cannot read stdout of `{command}`: {error}")).with_type("io"));
        }
    };
    let stderr = tail(stderr, STDERR_TAIL_BYTES);
    let with_stderr = |message: String| match stderr.is_empty() {
        true => message,
        false => format!("{message}; stderr: {stderr}"),
    };
    match status.code() {
        Some(0) => parse_output(&stdout, &format!("stdout of `{command}`")).map_err(|e| {
            let message = with_stderr(e.message().to_owned());
            TaskError::fatal(message).with_type(e.error_type())
        }),
        Some(code) => {
            let message = with_stderr(format!("`{command}` exited with code {code}"));
            let error = match exec.retryable_exit_codes.contains(&code) {
                true => TaskError::retryable(message),
                false => TaskError::fatal(message),
            };
            Err(error.with_type("exit_code").with_details(json!({"exit_code": code, "stderr": stderr})))
        }
        None => {
            let signal = signal_of(status);
            let message = with_stderr(format!("`{command}` was killed by signal {}", signal.1));
            Err(TaskError::retryable(message)
                .with_type("signal")
                .with_details(json!({"signal": signal.0, "stderr": stderr})))
        }
    }
}

/// The number and name of the signal that ended the process.
#[cfg(unix)]
fn signal_of(status: ExitStatus) -> (Option<i32>, String) {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(n) => {
            let name = nix::sys::signal::Signal::try_from(n).map(|s| format!(" ({})", s.as_str())).unwrap_or_default();
            (Some(n), format!("{n}{name}"))
        }
        None => (None, "(unknown)".to_owned()),
    }
}

#[cfg(not(unix))]
fn signal_of(_: ExitStatus) -> (Option<i32>, String) {
    (None, "(unknown)".to_owned())
}
