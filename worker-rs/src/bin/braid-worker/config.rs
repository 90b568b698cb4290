//! The config file (TOML): the worker's settings and one `[[task]]` table per task type, parsed strictly.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("{}: cannot read", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    /// The control plane's gRPC endpoint; `--endpoint`/`BRAID_ENDPOINT` win over it.
    pub(crate) control_plane: Option<String>,
    /// The variable holding the API token (default: `BRAID_TOKEN`, as `--token` reads).
    pub(crate) token_env: Option<String>,
    /// The worker's name (default: HOSTNAME-PID).
    pub(crate) name: Option<String>,
    /// Tasks run at once.
    #[serde(default = "default_slots")]
    pub(crate) slots: u32,
    /// How long a drain lets running tasks finish.
    #[serde(default, with = "humantime_serde")]
    pub(crate) drain_timeout: Option<Duration>,
    /// Labels sent in `Hello`.
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
    /// Serves Prometheus metrics on `http://ADDR/metrics`.
    pub(crate) metrics_listen: Option<SocketAddr>,
    /// The task types served.
    #[serde(default, rename = "task")]
    pub(crate) tasks: Vec<TaskConfig>,
    /// The file's path, for messages.
    #[serde(skip)]
    pub(crate) path: PathBuf,
    /// The directory of the file (absolute): relative paths in it are relative to this.
    #[serde(skip)]
    pub(crate) dir: PathBuf,
}

fn default_slots() -> u32 {
    4
}

/// One `[[task]]`: its type and how it is executed.
#[derive(Debug, Deserialize)]
#[serde(tag = "executor", rename_all = "lowercase")]
pub(crate) enum TaskConfig {
    Http(HttpTask),
    Process(ProcessTask),
}

impl TaskConfig {
    pub(crate) fn task_type(&self) -> &str {
        match self {
            Self::Http(t) => &t.task_type,
            Self::Process(t) => &t.task_type,
        }
    }
}

/// `executor = "http"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpTask {
    #[serde(rename = "type")]
    pub(crate) task_type: String,
    pub(crate) url: String,
    #[serde(default, with = "humantime_serde")]
    pub(crate) timeout: Option<Duration>,
    /// Headers sent as given.
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    /// Headers whose value is read from an environment variable: name → variable.
    #[serde(default)]
    pub(crate) headers_from_env: BTreeMap<String, String>,
    /// A PEM CA file trusted for `https://`, besides the web roots.
    pub(crate) ca_cert: Option<PathBuf>,
    pub(crate) max_output_bytes: Option<usize>,
}

/// `executor = "process"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProcessTask {
    #[serde(rename = "type")]
    pub(crate) task_type: String,
    /// The program and its arguments.
    pub(crate) command: Vec<String>,
    #[serde(default)]
    pub(crate) env: BTreeMap<String, String>,
    /// Where the process runs (default: the config file's directory).
    pub(crate) working_dir: Option<PathBuf>,
    #[serde(default, with = "humantime_serde")]
    pub(crate) timeout: Option<Duration>,
    pub(crate) retryable_exit_codes: Option<Vec<i32>>,
    pub(crate) max_output_bytes: Option<usize>,
}

/// Reads and parses `path`; checks what the types cannot say (at least one task, no empty
/// command).
pub(crate) fn load(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    let mut config = parse(&text).map_err(|message| ConfigError::Parse { path: path.to_owned(), message })?;
    let invalid = |message: String| ConfigError::Invalid { path: path.to_owned(), message };
    if config.tasks.is_empty() {
        return Err(invalid("no [[task]] tables: add at least one task type to serve".to_owned()));
    }
    for (i, task) in config.tasks.iter().enumerate() {
        if let TaskConfig::Process(p) = task
            && p.command.first().is_none_or(String::is_empty)
        {
            return Err(invalid(format!(
                "task {} ({:?}): command is empty: give the program and its arguments",
                i + 1,
                p.task_type
            )));
        }
    }
    let absolute = std::path::absolute(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    config.dir = absolute.parent().map_or_else(|| PathBuf::from("/"), Path::to_owned);
    config.path = path.to_owned();
    Ok(config)
}

/// Parses the text; the error names the offending key and its line.
pub(crate) fn parse(text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
