//! `braid drill SCENARIO`: fault drills against a deployment the drill starts itself, with invariants checked after each.
//!
//! A drill creates a fresh database `braid_drill_<hex>` on the given PostgreSQL server, starts
//! control planes (`braid server`, this executable) and example workers as child processes it
//! can kill, drives a workload, injects a fault, waits (bounded) for the system to settle, and
//! checks the invariants through the gRPC API, the database and the workers' ledgers.
//! The audit reads the database with its own queries on purpose: it must not trust the code
//! under test. A broken invariant is a FAIL in the [`Report`], not an error.

pub mod client;
pub mod database;
pub mod error;
pub mod harness;
pub mod invariants;
pub mod ledger;
pub mod monitor;
pub mod process;
pub mod progress;
pub mod report;
pub mod scenarios;
pub mod settle;
pub mod snapshot;
pub mod workload;

pub use error::DrillError;
pub use report::{Report, Status};

use harness::Harness;
use progress::Progress;
use std::path::PathBuf;
use std::time::Duration;

/// A fault scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// kill -9 every worker with 200+ tasks in flight, then restart them.
    WorkerCrash,
    /// SIGSTOP a worker holding leases past the TTL, let others take them, SIGCONT it.
    ZombieWorker,
    /// SIGTERM a worker running tasks longer than the lease TTL: each runs exactly once.
    Drain,
    /// FLUSHALL on Redis mid-run.
    RedisFlush,
    /// kill -9 redis-server mid-run, then start it again (needs --services-script/--services-dir).
    RedisCrash,
    /// The same with an append-only file (fsync always): Redis comes back with its queue.
    RedisCrashAof,
    /// A task that crashes its worker process every time: dead-lettered, the rest keeps flowing.
    PoisonTask,
    /// 200 concurrent triggers with one idempotency key across two control planes: one run.
    IdempotencyStorm,
    /// pg_ctl stop -m immediate and start under a stream of keyed, retried triggers (needs the services script).
    PostgresRestart,
    /// kill -9 the control plane under load, also right after a commit (failpoint), and restart it.
    ControlPlaneCrash,
}

impl Scenario {
    /// Whether it stops and starts Redis or PostgreSQL through `scripts/services`.
    pub fn needs_services(self) -> bool {
        matches!(self, Self::RedisCrash | Self::RedisCrashAof | Self::PostgresRestart)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::WorkerCrash => "worker-crash",
            Self::ZombieWorker => "zombie-worker",
            Self::Drain => "drain",
            Self::RedisFlush => "redis-flush",
            Self::RedisCrash => "redis-crash",
            Self::RedisCrashAof => "redis-crash-aof",
            Self::PoisonTask => "poison-task",
            Self::IdempotencyStorm => "idempotency-storm",
            Self::PostgresRestart => "postgres-restart",
            Self::ControlPlaneCrash => "control-plane-crash",
        }
    }
}

/// What a drill runs against and how.
#[derive(Debug, Clone)]
pub struct Config {
    pub scenario: Scenario,
    /// The `braid` executable started as `braid server`.
    pub exe: PathBuf,
    pub worker_bin: PathBuf,
    /// A PostgreSQL server URL; the drill creates and drops its own database there.
    pub database_url: String,
    pub redis_url: String,
    /// `scripts/services` and its state dir, to stop and start Redis or PostgreSQL.
    pub services_script: Option<PathBuf>,
    pub services_dir: Option<PathBuf>,
    pub lease_ttl: Duration,
    pub reaper_interval: Duration,
    pub reconcile_grace: Duration,
    /// How long the system may take to settle after the fault.
    pub deadline: Duration,
    /// Slack on "leased past expiry plus the reaper interval" for the reaper's own pass.
    pub stuck_tolerance: Duration,
    /// Keep the database and the work dir.
    pub keep: bool,
    pub work_dir: Option<PathBuf>,
}

/// Runs one drill and returns its report; Ctrl-C stops it (and cleans up).
pub async fn run(cfg: Config) -> Result<Report, DrillError> {
    if cfg.scenario.needs_services() && (cfg.services_script.is_none() || cfg.services_dir.is_none()) {
        return Err(DrillError::Config(format!(
            "{} needs --services-script and --services-dir (env BRAID_SERVICES_SCRIPT and BRAID_SERVICES_DIR, exported by `scripts/services start`)",
            cfg.scenario.name()
        )));
    }
    let progress = Progress::new();
    progress.event("setup", format!("drill {} starting", cfg.scenario.name()));
    let mut h = Harness::setup(cfg, progress.clone()).await?;
    let outcome = tokio::select! {
        r = scenarios::run(&mut h) => r,
        _ = tokio::signal::ctrl_c() => Err(DrillError::Interrupted),
    };
    match outcome {
        Ok(evidence) => {
            let mut report = scenarios::report(&mut h, &evidence);
            let failed = report.verdict == Status::Fail;
            let (db, db_kept, dir_kept) = h.teardown(failed).await;
            report.deployment.database = db;
            report.deployment.database_kept = db_kept;
            report.deployment.work_dir_kept = dir_kept;
            report.notes.clone_from(&h.notes);
            progress.finish();
            Ok(report)
        }
        Err(e) => {
            progress.finish();
            let (db, db_kept, dir_kept) = h.teardown(true).await;
            let fate = if db_kept { "kept" } else { "dropped" };
            progress.event("setup", format!("drill stopped: {e}; database {db} {fate}"));
            if dir_kept {
                progress.event("setup", format!("logs and ledgers kept in {}", h.dir.display()));
            }
            Err(e)
        }
    }
}
