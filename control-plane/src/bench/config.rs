//! What a bench measures and against what: modes, workload sizes (full or `--quick`), the deployment.

use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// A workload of the "braid bench" section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// N one-task runs enqueued as fast as one producer can: bulk TriggerRuns, then one TriggerRun per run.
    Throughput,
    /// Enqueue-to-start latency of tasks paced at a steady rate, one TriggerRun each.
    Latency,
    /// 1 → W → 1 DAG runs: a burst (runs/s), then single runs on an idle system (makespan).
    Dag,
    /// A backlog pre-loaded with no worker connected, then drained.
    Drain,
    /// A steady rate for a long time: RSS and p99 latency per window.
    Soak,
    /// Every mode above, in that order.
    All,
}

impl Mode {
    /// The modes this one stands for, in the order they run.
    pub fn expand(self) -> Vec<Mode> {
        match self {
            Self::All => vec![Self::Throughput, Self::Latency, Self::Dag, Self::Drain, Self::Soak],
            m => vec![m],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Throughput => "throughput",
            Self::Latency => "latency",
            Self::Dag => "dag",
            Self::Drain => "drain",
            Self::Soak => "soak",
            Self::All => "all",
        }
    }
}

/// Where the control plane under test comes from.
#[derive(Debug, Clone)]
pub enum Target {
    /// `braid server` on a throwaway database of this PostgreSQL server, with this Redis.
    Postgres { database_url: String, redis_url: String },
    /// `braid dev`: SQLite in a temporary data dir, the in-process queue.
    Embedded,
    /// A deployment that is already running; nothing is started.
    Endpoint(String),
}

impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Postgres { .. } => "postgres",
            Self::Embedded => "embedded",
            Self::Endpoint(_) => "endpoint",
        }
    }
}

/// The sizes of every workload; `full()` is the definition, `quick()` a run of seconds.
#[derive(Debug, Clone, Serialize)]
pub struct Sizes {
    /// Throughput: one-task runs per figure.
    pub tasks: u64,
    /// Runs per TriggerRuns call.
    pub batch: usize,
    /// TriggerRuns calls in flight at once.
    pub batch_in_flight: usize,
    /// TriggerRun calls in flight at once (one per run).
    pub in_flight: usize,
    /// Trigger one run per call everywhere (servers without TriggerRuns).
    pub per_call: bool,
    pub latency_tasks: u64,
    /// Tasks per second of the latency workload.
    pub latency_rate: f64,
    /// DAG runs submitted back to back.
    pub dag_runs: u64,
    /// The W of 1 → W → 1.
    pub dag_width: usize,
    /// Sequential single DAG runs for the makespan.
    pub makespan_runs: u64,
    pub drain_tasks: u64,
    #[serde(with = "humantime_serde")]
    pub soak_duration: Duration,
    /// Tasks per second of the soak.
    pub soak_rate: f64,
    /// The soak reports RSS and p99 per window of this length.
    #[serde(with = "humantime_serde")]
    pub soak_window: Duration,
    /// Runs through the same path before measuring, after workers (re)connect.
    pub warmup: u64,
    /// How many times each figure is measured.
    pub repeat: u32,
    /// Rust workers (streams) in the bench process, and slots of each.
    pub worker_streams: u32,
    pub slots: u32,
}

impl Sizes {
    /// The workloads as the issue defines them.
    pub fn full() -> Self {
        Self {
            tasks: 20_000,
            batch: 500,
            batch_in_flight: 4,
            in_flight: 64,
            per_call: false,
            latency_tasks: 200,
            latency_rate: 100.0,
            dag_runs: 200,
            dag_width: 100,
            makespan_runs: 50,
            drain_tasks: 100_000,
            soak_duration: Duration::from_secs(600),
            soak_rate: 5000.0,
            soak_window: Duration::from_secs(60),
            warmup: 500,
            repeat: 3,
            worker_streams: 2,
            slots: 200,
        }
    }

    /// A tiny configuration that runs in seconds (CI).
    pub fn quick() -> Self {
        Self {
            tasks: 500,
            latency_tasks: 50,
            dag_runs: 5,
            dag_width: 10,
            makespan_runs: 5,
            drain_tasks: 1000,
            soak_duration: Duration::from_secs(3),
            soak_rate: 500.0,
            soak_window: Duration::from_secs(1),
            warmup: 50,
            repeat: 1,
            ..Self::full()
        }
    }
}

/// Everything one `braid bench` needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub modes: Vec<Mode>,
    pub target: Target,
    /// The `braid` executable started as `braid server` / `braid dev`.
    pub server_bin: PathBuf,
    pub sizes: Sizes,
    /// Keep the database (and the work dir with the server's log).
    pub keep: bool,
    pub work_dir: Option<PathBuf>,
    /// The command line, for the report.
    pub command: Vec<String>,
    pub quick: bool,
}
