//! The executors of the config file's `[[task]]` tables: built, registered on the worker, and described for `--check`.

use crate::config::{FileConfig, HttpTask, ProcessTask, TaskConfig};
use braid_worker::{HttpExecutor, ProcessExecutor, WorkerBuilder};
use std::path::{Path, PathBuf};

/// Why a `[[task]]` table cannot be served.
#[derive(Debug, thiserror::Error)]
#[error("task {index} ({task_type:?}): {message}")]
pub(crate) struct SetupError {
    index: usize,
    task_type: String,
    message: String,
}

/// One task type and its executor.
pub(crate) enum Served {
    Http(String, HttpExecutor),
    Process(String, ProcessExecutor),
}

/// Builds every task's executor. `hidden_env` names the worker's variables a process must not
/// inherit (its token).
pub(crate) fn build(config: &FileConfig, hidden_env: &[String]) -> Result<Vec<Served>, SetupError> {
    let mut served = Vec::with_capacity(config.tasks.len());
    for (i, task) in config.tasks.iter().enumerate() {
        let error = |message: String| SetupError { index: i + 1, task_type: task.task_type().to_owned(), message };
        served.push(match task {
            TaskConfig::Http(t) => Served::Http(t.task_type.clone(), http(t, &config.dir).map_err(error)?),
            TaskConfig::Process(t) => {
                Served::Process(t.task_type.clone(), process(t, &config.dir, hidden_env).map_err(error)?)
            }
        });
    }
    Ok(served)
}

fn http(task: &HttpTask, dir: &Path) -> Result<HttpExecutor, String> {
    let mut builder = HttpExecutor::builder(&task.url);
    if let Some(timeout) = task.timeout {
        builder = builder.timeout(timeout);
    }
    for (name, value) in &task.headers {
        builder = builder.header(name, value);
    }
    for (name, var) in &task.headers_from_env {
        let value = std::env::var(var)
            .map_err(|_| format!("header {name:?} is read from the environment variable {var}, which is not set"))?;
        builder = builder.header(name, value);
    }
    if let Some(path) = &task.ca_cert {
        let path = dir.join(path);
        let pem = std::fs::read(&path).map_err(|e| format!("ca_cert {}: cannot read: {e}", path.display()))?;
        builder = builder.tls_ca_cert(pem);
    }
    if let Some(bytes) = task.max_output_bytes {
        builder = builder.max_output_bytes(bytes);
    }
    builder.build().map_err(|e| e.to_string())
}

fn process(task: &ProcessTask, dir: &Path, hidden_env: &[String]) -> Result<ProcessExecutor, String> {
    let (program, args) = task.command.split_first().ok_or("command is empty")?;
    let working_dir = task.working_dir.as_ref().map_or_else(|| dir.to_owned(), |d| dir.join(d));
    // `./run.sh` or `bin/report` is relative to the working directory, whatever the platform does.
    let program = match Path::new(program) {
        p if p.is_relative() && p.components().count() > 1 => working_dir.join(p.strip_prefix(".").unwrap_or(p)),
        p => PathBuf::from(p),
    };
    let mut builder = ProcessExecutor::builder(program.to_string_lossy()).args(args).current_dir(working_dir);
    for var in hidden_env {
        builder = builder.env_remove(var);
    }
    for (key, value) in &task.env {
        builder = builder.env(key, value);
    }
    if let Some(timeout) = task.timeout {
        builder = builder.timeout(timeout);
    }
    if let Some(codes) = &task.retryable_exit_codes {
        builder = builder.retryable_exit_codes(codes.iter().copied());
    }
    if let Some(bytes) = task.max_output_bytes {
        builder = builder.max_output_bytes(bytes);
    }
    builder.build().map_err(|e| e.to_string())
}

/// Registers every executor on `builder`.
pub(crate) fn register(served: Vec<Served>, mut builder: WorkerBuilder) -> WorkerBuilder {
    for one in served {
        builder = match one {
            Served::Http(task_type, executor) => builder.executor(task_type, executor),
            Served::Process(task_type, executor) => builder.executor(task_type, executor),
        };
    }
    builder
}

/// One line a task: its type, its executor and what it runs.
pub(crate) fn describe(served: &[Served]) -> Vec<String> {
    served
        .iter()
        .map(|one| match one {
            Served::Http(task_type, e) => {
                format!("{task_type}\thttp\tPOST {} (timeout {})", e.url(), humantime::format_duration(e.timeout()))
            }
            Served::Process(task_type, e) => {
                let timeout = e.timeout().map_or("none".to_owned(), |t| humantime::format_duration(t).to_string());
                let codes: Vec<String> = e.retryable_exit_codes().map(|c| c.to_string()).collect();
                let dir = e.current_dir().map(|d| d.display().to_string()).unwrap_or_default();
                format!(
                    "{task_type}\tprocess\t{} (in {dir}; timeout {timeout}; retryable exit codes [{}])",
                    e.command_line(),
                    codes.join(", ")
                )
            }
        })
        .collect()
}
