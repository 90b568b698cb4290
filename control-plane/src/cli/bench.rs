//! `braid bench MODE`: its flags, the deployment they choose, and printing the report (table or JSON).

use super::CliError;
use crate::bench::{self, Mode, Sizes, Target};
use std::path::PathBuf;
use std::time::Duration;

/// Which deployment the bench starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeploymentKind {
    /// `braid server` on a throwaway database of DATABASE_URL's server, with REDIS_URL.
    Postgres,
    /// `braid dev`: SQLite in a temporary data dir.
    Embedded,
}

/// Which workers serve the bench's tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workers {
    /// braid-worker SDK workers inside the bench process.
    Rust,
    Python,
    Ts,
    Go,
}

/// Measure throughput, latency, DAG, drain and soak figures (docs/benchmarks.md).
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "The postgres deployment needs a PostgreSQL server and a Redis: eval \"$(scripts/services start)\" \
sets DATABASE_URL and REDIS_URL. The bench creates and drops its own database (braid_bench_<hex>) and uses task \
types of its own.\nFigures are medians of --repeat runs with min and max; targets are the issue's, for the full-size \
workloads on the reference machine.\nExamples:\n  braid bench all --quick\n  braid bench throughput --json\n  braid \
bench latency --deployment embedded\n  braid bench dag --endpoint http://127.0.0.1:7400"
)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    pub mode: Mode,
    /// The deployment to start (ignored with --endpoint).
    #[arg(long, value_enum, default_value_t = DeploymentKind::Postgres)]
    pub deployment: DeploymentKind,
    /// Measure a running deployment instead of starting one (no RSS or database figures then).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// PostgreSQL server (postgres deployment); the bench creates braid_bench_<hex> there and drops it.
    #[arg(long, env = "DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Redis for the dispatch queue (postgres deployment).
    #[arg(long, env = "REDIS_URL", value_name = "URL")]
    pub redis_url: Option<String>,
    /// The `braid` started as server or dev [default: this executable]; point it at another build to compare.
    #[arg(long, value_name = "PATH")]
    pub server_bin: Option<PathBuf>,
    /// Keep the bench database and the dir with the server's log.
    #[arg(long)]
    pub keep: bool,
    /// Where the server's log (and dev's data) go [default: a new dir under the temp dir].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Which workers serve the tasks.
    #[arg(long, value_enum, default_value_t = Workers::Rust)]
    pub workers: Workers,
    /// Worker streams (Rust workers in this process).
    #[arg(long, value_name = "N")]
    pub worker_streams: Option<u32>,
    /// Slots of each worker stream.
    #[arg(long, value_name = "S")]
    pub slots: Option<u32>,
    /// Tasks of the mode: throughput N, latency tasks, drain pre-load, DAG burst runs [default: per mode].
    #[arg(long, value_name = "N")]
    pub tasks: Option<u64>,
    /// Tasks per second: latency pacing [100], soak [5000].
    #[arg(long, value_name = "PER_S")]
    pub rate: Option<f64>,
    /// Runs per TriggerRuns call.
    #[arg(long, value_name = "N")]
    pub batch: Option<usize>,
    /// TriggerRuns calls in flight at once.
    #[arg(long, value_name = "N")]
    pub batch_in_flight: Option<usize>,
    /// Trigger one run per TriggerRun call everywhere (for servers without TriggerRuns).
    #[arg(long)]
    pub per_call: bool,
    /// TriggerRun calls in flight at once (one run each).
    #[arg(long, value_name = "N")]
    pub in_flight: Option<usize>,
    /// The W of the 1 → W → 1 DAG.
    #[arg(long, value_name = "W")]
    pub dag_width: Option<usize>,
    /// Sequential single DAG runs for the makespan.
    #[arg(long, value_name = "N")]
    pub makespan_runs: Option<u64>,
    /// Soak duration.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Soak window: RSS and p99 are reported per window.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub window: Option<Duration>,
    /// Runs through the same path before measuring.
    #[arg(long, value_name = "N")]
    pub warmup: Option<u64>,
    /// How many times each figure is measured [3; 1 with --quick].
    #[arg(long, value_name = "K")]
    pub repeat: Option<u32>,
    /// A tiny configuration that runs in seconds (CI): flags above still override it.
    #[arg(long)]
    pub quick: bool,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Add the top statements by calls to the table (postgres deployment).
    #[arg(long)]
    pub explain_db: bool,
}

impl BenchArgs {
    fn sizes(&self) -> Sizes {
        let mut s = if self.quick { Sizes::quick() } else { Sizes::full() };
        let set = |v: Option<u64>, into: &mut u64| {
            if let Some(v) = v {
                *into = v;
            }
        };
        set(self.tasks, &mut s.tasks);
        set(self.tasks, &mut s.latency_tasks);
        set(self.tasks, &mut s.drain_tasks);
        set(self.tasks, &mut s.dag_runs);
        set(self.makespan_runs, &mut s.makespan_runs);
        set(self.warmup, &mut s.warmup);
        if let Some(r) = self.rate {
            s.latency_rate = r;
            s.soak_rate = r;
        }
        s.batch = self.batch.unwrap_or(s.batch);
        s.batch_in_flight = self.batch_in_flight.unwrap_or(s.batch_in_flight);
        s.in_flight = self.in_flight.unwrap_or(s.in_flight);
        s.per_call = self.per_call;
        s.dag_width = self.dag_width.unwrap_or(s.dag_width);
        s.soak_duration = self.duration.unwrap_or(s.soak_duration);
        s.soak_window = self.window.unwrap_or(s.soak_window);
        s.repeat = self.repeat.unwrap_or(s.repeat);
        s.worker_streams = self.worker_streams.unwrap_or(s.worker_streams);
        s.slots = self.slots.unwrap_or(s.slots);
        s
    }

    fn check(&self, s: &Sizes) -> Result<(), CliError> {
        let mut problems = Vec::new();
        if s.repeat == 0 {
            problems.push("--repeat must be at least 1");
        }
        if s.tasks == 0 || s.latency_tasks == 0 || s.drain_tasks == 0 || s.dag_runs == 0 || s.makespan_runs == 0 {
            problems.push("--tasks and --makespan-runs must be at least 1");
        }
        if !(s.latency_rate > 0.0 && s.soak_rate > 0.0 && s.latency_rate.is_finite() && s.soak_rate.is_finite()) {
            problems.push("--rate must be a positive number");
        }
        if s.batch == 0 || s.batch > 1000 {
            problems.push("--batch must be 1..=1000 (TriggerRuns takes at most 1,000 runs)");
        }
        if s.batch_in_flight == 0 || s.in_flight == 0 || s.worker_streams == 0 || s.slots == 0 {
            problems.push("--batch-in-flight, --in-flight, --worker-streams and --slots must be at least 1");
        }
        if s.dag_width == 0 || s.dag_width > 998 {
            problems.push("--dag-width must be 1..=998 (a workflow holds at most 1,000 tasks)");
        }
        if s.soak_window.is_zero() || s.soak_duration.is_zero() {
            problems.push("--duration and --window must be more than zero");
        }
        if problems.is_empty() { Ok(()) } else { Err(CliError::Input(problems.join("; "))) }
    }
}

pub async fn run(args: BenchArgs) -> Result<(), CliError> {
    if args.workers != Workers::Rust {
        return Err(CliError::Input(format!(
            "--workers {:?} is not supported yet: only the Rust workers in the bench process are",
            args.workers
        )));
    }
    let sizes = args.sizes();
    args.check(&sizes)?;
    let target = match (&args.endpoint, args.deployment) {
        (Some(e), _) => Target::Endpoint(e.clone()),
        (None, DeploymentKind::Embedded) => Target::Embedded,
        (None, DeploymentKind::Postgres) => match (&args.database_url, &args.redis_url) {
            (Some(d), Some(r)) => Target::Postgres { database_url: d.clone(), redis_url: r.clone() },
            _ => {
                return Err(CliError::Input(
                    "the postgres deployment needs --database-url and --redis-url (env DATABASE_URL and REDIS_URL, \
                     set by `eval \"$(scripts/services start)\"`), or use --deployment embedded or --endpoint URL"
                        .into(),
                ));
            }
        },
    };
    let server_bin = match &args.server_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(|e| CliError::Input(format!("cannot find this executable: {e}")))?,
    };
    if !matches!(target, Target::Endpoint(_)) && !server_bin.is_file() {
        return Err(CliError::Input(format!("no braid executable at {}", server_bin.display())));
    }
    let cfg = bench::Config {
        modes: args.mode.expand(),
        target,
        server_bin,
        sizes,
        keep: args.keep,
        work_dir: args.work_dir.clone(),
        command: std::env::args().collect(),
        quick: args.quick,
    };
    let report = bench::run(cfg).await?;
    if args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| CliError::Input(e.to_string()))?;
        outln!("{text}");
    } else {
        for line in report.text(args.explain_db).lines() {
            outln!("{line}");
        }
    }
    Ok(())
}
