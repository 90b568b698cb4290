//! The `braid` command line: what each subcommand takes, and dispatch to its implementation.

/// Prints a line on stdout; a closed pipe (`braid run list | head`) ends the process quietly.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout().lock(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

mod access;
mod admin;
mod bench;
mod client;
pub mod demo;
mod drill;
mod output;
mod replay;
mod schedule;
mod serve;
mod simulate;
mod watch;

use crate::config::ServerArgs;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Braid: a workflow orchestrator. Run `braid dev` to try it in one process.
#[derive(Debug, Parser)]
#[command(
    name = "braid",
    version = crate::VERSION,
    after_help = "Try it:\n  braid dev                                   # everything in one process, a demo run included\n  braid workflow apply -f docs/examples/thumbnails.yaml\n  braid run start thumbnails --input '{\"url\": \"cat.png\"}'\n  braid run get RUN_ID\n\nOperator verbs talk to --endpoint (env BRAID_ENDPOINT, default http://127.0.0.1:7400)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a control plane against PostgreSQL and Redis (production mode).
    Server(ServerArgs),
    /// Run Braid in one process with no outside services: SQLite in a data dir, an in-process queue.
    Dev(DevArgs),
    /// Apply the database migrations this braid knows (PostgreSQL or SQLite URL).
    Migrate(MigrateArgs),
    /// Author workflows: apply, validate, list, get.
    #[command(subcommand)]
    Workflow(WorkflowCommand),
    /// Start, inspect and cancel runs.
    #[command(subcommand)]
    Run(RunCommand),
    /// The dead-letter queue: tasks that ran out of attempts.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Connected workers.
    #[command(subcommand)]
    Worker(WorkerCommand),
    /// Cron schedules: create, get, list, update, pause, resume, delete, backfill.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
    /// Run a fault drill (worker-crash, zombie-worker, drain, ...) on a deployment it starts, and check the invariants.
    Drill(drill::DrillArgs),
    /// Measure throughput, latency, DAG, drain and soak figures against a deployment it starts or is given.
    Bench(bench::BenchArgs),
    /// Replay a recorded run's decisions with its recorded outcomes (no workers); compare with another version.
    Replay(replay::ReplayArgs),
    /// Run the real engine on virtual time with simulated workers and faults from a seed; check the invariants.
    Simulate(simulate::SimulateArgs),
    /// Tenants and API tokens, managed directly in the database (no token needed).
    #[command(subcommand)]
    Admin(access::AdminCommand),
}

/// Selects dead letters; every flag narrows the selection.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DlqFilter {
    #[arg(long)]
    pub workflow: Option<String>,
    #[arg(long)]
    pub task: Option<String>,
    /// The `type` of the last error, e.g. lease_expired.
    #[arg(long)]
    pub error_type: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters, newest first.
    List {
        #[command(flatten)]
        filter: DlqFilter,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Make dead-lettered tasks ready again with fresh attempts; their runs resume.
    Redrive {
        /// Dead-letter ids (from `braid dlq list`).
        ids: Vec<String>,
        /// Redrive every dead letter matching the filter flags (all of them without flags).
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        #[command(flatten)]
        filter: DlqFilter,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete dead letters without redriving them (their tasks stay failed; their runs become
    /// subject to retention): named ones (--id), those matching the filter flags, or --all.
    Purge {
        /// A dead-letter id (from `braid dlq list`); repeat for several.
        #[arg(long = "id", value_name = "ID", conflicts_with_all = ["all", "workflow", "task", "error_type"])]
        ids: Vec<String>,
        /// Purge every dead letter (narrowed by any filter flags).
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        filter: DlqFilter,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// List connected workers.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// Where the SQLite database lives (created if missing).
    #[arg(long, env = "BRAID_DATA_DIR", default_value = ".braid")]
    pub data_dir: PathBuf,
    /// gRPC port on 127.0.0.1; 0 picks a free port.
    #[arg(long, env = "BRAID_GRPC_PORT", default_value_t = 7400)]
    pub grpc_port: u16,
    /// HTTP port on 127.0.0.1 (metrics, health); 0 picks a free port.
    #[arg(long, env = "BRAID_HTTP_PORT", default_value_t = 7401)]
    pub http_port: u16,
    /// Do not start the demo worker, load the demo workflow, or trigger a demo run.
    #[arg(long, env = "BRAID_NO_DEMO")]
    pub no_demo: bool,
    /// Serve without authentication: every call acts as an admin of tenant "default".
    #[arg(long, env = "BRAID_INSECURE")]
    pub insecure: bool,
    /// `/metrics` answers only a bearer token that may read (by default it is open).
    #[arg(long, env = "BRAID_METRICS_NEED_TOKEN")]
    pub metrics_need_token: bool,
    /// Where run inputs and task outputs over --payload-inline-max are kept (file:///dir or
    /// s3://bucket/prefix) [default: DATA_DIR/objects].
    #[arg(long, env = "BRAID_OBJECT_STORE", value_name = "URL")]
    pub object_store: Option<String>,
    #[command(flatten)]
    pub tls: crate::config::TlsArgs,
    #[command(flatten)]
    pub exec: crate::config::ExecArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// Database to migrate: postgres://… or sqlite://path?mode=rwc.
    #[arg(long, env = "BRAID_DATABASE_URL", value_name = "URL")]
    pub database_url: String,
}

/// Where the operator verbs find a control plane, and how they print.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// gRPC endpoint of a control plane.
    #[arg(long, env = "BRAID_ENDPOINT", default_value = "http://127.0.0.1:7400", global = true)]
    pub endpoint: String,
    /// PEM CA certificate(s) that the server's certificate must chain to (an https:// endpoint).
    #[arg(long, env = "BRAID_CA_CERT", value_name = "PATH", global = true)]
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate for a server that requires one (mTLS); with --client-key.
    #[arg(long, env = "BRAID_CLIENT_CERT", value_name = "PATH", global = true, requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, env = "BRAID_CLIENT_KEY", value_name = "PATH", global = true, requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text, global = true)]
    pub output: Output,
    /// API token, sent as `authorization: Bearer …` (`braid dev` prints one; `braid admin token create` makes them).
    #[arg(long, env = "BRAID_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum WorkflowCommand {
    /// Validate and store a workflow from a YAML or JSON file as its next version.
    Apply {
        /// The definition file (.yaml, .yml or .json).
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Check a definition file without storing it; lists every problem.
    Validate {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List workflows with their latest version.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show one version of a workflow (the latest by default).
    Get {
        name: String,
        #[arg(long)]
        version: Option<u32>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Trigger a run of a workflow.
    Start {
        workflow: String,
        /// Run input as JSON text, or @FILE to read it from a file.
        #[arg(long, default_value = "{}")]
        input: String,
        /// Make the trigger idempotent: the same key returns the same run.
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Workflow version (default: latest).
        #[arg(long)]
        version: Option<u32>,
        /// high, normal or low: ready tasks of higher priority are dispatched first.
        #[arg(long, default_value = "normal")]
        priority: crate::domain::flow::Priority,
        /// Runs sharing this key count against the workflow's `max_per_key`.
        #[arg(long)]
        concurrency_key: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a run with its tasks.
    Get {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Follow a run live, one line per event, then print it; exit code 0 if it succeeded, 1 if it failed (or on an error), 2 if it was cancelled.
    Watch {
        id: String,
        /// Only events with a greater sequence (default: the whole log).
        #[arg(long, default_value_t = 0)]
        after: u64,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Cancel a run: its unfinished tasks stop and the run ends cancelled.
    Cancel {
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List runs, newest first.
    List {
        #[arg(long)]
        workflow: Option<String>,
        /// Only runs in this state (queued, running, succeeded, failed, cancelled); repeatable.
        #[arg(long)]
        state: Vec<String>,
        /// Only runs made by this schedule (its id).
        #[arg(long)]
        schedule: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Continue after a previous page.
        #[arg(long)]
        page_token: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Why a command failed; printed as `error: …` with exit code 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    App(#[from] crate::app::AppError),
    #[error("cannot reach {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    #[error("{}", rpc_error(.0))]
    Rpc(#[from] tonic::Status),
    #[error("{0}")]
    Input(String),
    #[error("redis: {0}")]
    Redis(String),
    #[error("engine: {0}")]
    Engine(#[from] crate::engine::EngineError),
    #[error("demo worker: {0}")]
    Worker(#[from] braid_worker::WorkerError),
    #[error("bench: {0}")]
    Bench(#[from] crate::bench::BenchError),
}

/// `Code: message`, then the causes of a transport failure (e.g. a TLS handshake the server refused).
fn rpc_error(status: &tonic::Status) -> String {
    let text = format!("{:?}: {}", status.code(), status.message());
    match std::error::Error::source(status) {
        Some(source) => format!("{text}: {}", crate::app::tls::chain(source)),
        None => text,
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Server(args) => serve::server(args).await,
        Command::Dev(args) => serve::dev(args).await,
        Command::Migrate(args) => serve::migrate(args).await,
        Command::Workflow(cmd) => client::workflow(cmd).await,
        Command::Run(cmd) => client::run(cmd).await,
        Command::Dlq(cmd) => admin::dlq(cmd).await,
        Command::Admin(cmd) => access::admin(cmd).await,
        Command::Worker(cmd) => admin::workers(cmd).await,
        Command::Schedule(cmd) => schedule::schedule(cmd).await,
        Command::Drill(args) => drill::run(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Simulate(args) => simulate::run(args).await,
        Command::Replay(args) => replay::run(args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
