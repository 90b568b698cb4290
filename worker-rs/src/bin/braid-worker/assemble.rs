//! Turning the config file and the connection flags into a built worker (or, for `--check`, into the lines describing it).

use crate::config::FileConfig;
use crate::connection::Connection;
use crate::tasks;
use anyhow::Context;
use braid_worker::{Worker, WorkerBuilder, WorkerEvent};

/// The variable `--token` reads when not given on the command line.
const DEFAULT_TOKEN_ENV: &str = "BRAID_TOKEN";

/// Builds everything a run would (executors, TLS, task type checks) without connecting or
/// binding; returns one line per task type.
pub(crate) fn check(config: &FileConfig, connection: &Connection) -> anyhow::Result<Vec<String>> {
    let served = tasks::build(config, &hidden_env(config)).with_context(|| config.path.display().to_string())?;
    let lines = tasks::describe(&served);
    let builder = settings(config, Worker::builder());
    let builder = connection.apply(builder, config.control_plane.as_deref(), None)?;
    tasks::register(served, builder).build().with_context(|| config.path.display().to_string())?;
    Ok(lines)
}

/// The worker of `config`, ready to run; it prints `worker NAME connected` on each connection.
pub(crate) fn worker(
    config: FileConfig,
    connection: &Connection,
    token_on_command_line: bool,
) -> anyhow::Result<Worker> {
    let token = token(&config, connection, token_on_command_line)?;
    let served = tasks::build(&config, &hidden_env(&config)).with_context(|| config.path.display().to_string())?;
    let mut builder = settings(&config, Worker::builder());
    if let Some(addr) = config.metrics_listen {
        builder = builder.metrics_listen(addr);
    }
    let builder = connection.apply(builder, config.control_plane.as_deref(), token)?;
    tasks::register(served, builder).build().with_context(|| config.path.display().to_string())
}

/// Name, slots, labels, drain timeout, and the readiness line.
fn settings(config: &FileConfig, builder: WorkerBuilder) -> WorkerBuilder {
    let name = config.name.clone().unwrap_or_else(braid_worker::default_name);
    let printed = name.clone();
    let mut builder = builder.name(name).slots(config.slots).labels(config.labels.clone()).on_event(move |event| {
        if let WorkerEvent::Connected { .. } = event {
            println!("worker {printed} connected");
        }
    });
    if let Some(timeout) = config.drain_timeout {
        builder = builder.drain_timeout(timeout);
    }
    builder
}

/// `--token` given on the command line, else the variable `token_env` names, else `BRAID_TOKEN`.
fn token(config: &FileConfig, connection: &Connection, on_command_line: bool) -> anyhow::Result<Option<String>> {
    if on_command_line {
        return Ok(connection.token.clone());
    }
    match &config.token_env {
        Some(var) => std::env::var(var).map(Some).with_context(|| {
            format!("{}: token_env names the variable {var}, which is not set", config.path.display())
        }),
        None => Ok(connection.token.clone()),
    }
}

/// The variables that hold the worker's token: processes do not inherit them.
fn hidden_env(config: &FileConfig) -> Vec<String> {
    let mut vars = vec![DEFAULT_TOKEN_ENV.to_owned()];
    vars.extend(config.token_env.clone());
    vars
}
