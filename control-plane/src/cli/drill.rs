//! `braid drill SCENARIO`: its flags, and printing the report (text or JSON); a failed drill exits 1.

use super::CliError;
use crate::drill::{self, Scenario, Status};
use std::path::PathBuf;
use std::time::Duration;

/// Run a fault drill against a deployment the drill starts itself, and check the invariants.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Needs a PostgreSQL server and a Redis: eval \"$(scripts/services start)\" sets DATABASE_URL, \
REDIS_URL, BRAID_SERVICES_SCRIPT and BRAID_SERVICES_DIR.\nThe drill creates and drops its own database; it \
flushes or restarts the Redis (and PostgreSQL) it is given in the redis-* and postgres-restart scenarios.\nExit \
code: 0 when every invariant and check holds, 1 otherwise. See docs/runbook.md.")]
pub struct DrillArgs {
    /// The fault to inject.
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// PostgreSQL server; the drill creates braid_drill_<hex> there and drops it afterwards.
    #[arg(long, env = "DATABASE_URL", value_name = "URL")]
    pub database_url: String,
    /// Redis for the dispatch queue (use one no other Braid uses: the drill flushes or restarts it in some scenarios).
    #[arg(long, env = "REDIS_URL", value_name = "URL")]
    pub redis_url: String,
    /// The example worker binary [default: braid-example-worker next to this executable].
    #[arg(long, env = "BRAID_WORKER_BIN", value_name = "PATH")]
    pub worker_bin: Option<PathBuf>,
    /// scripts/services, to stop and start Redis and PostgreSQL (redis-crash, postgres-restart).
    #[arg(long, env = "BRAID_SERVICES_SCRIPT", value_name = "PATH")]
    pub services_script: Option<PathBuf>,
    /// The state dir of scripts/services.
    #[arg(long, env = "BRAID_SERVICES_DIR", value_name = "DIR")]
    pub services_dir: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Keep the drill database and the dir of logs and ledgers.
    #[arg(long)]
    pub keep: bool,
    /// Where logs and worker ledgers go [default: a new dir under the temp dir, removed unless kept or failed].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// How long the system may take to settle after the fault.
    #[arg(long, default_value = "45s", value_parser = humantime::parse_duration)]
    pub deadline: Duration,
    /// Lease TTL of the drill's control planes.
    #[arg(long, default_value = "1500ms", value_parser = humantime::parse_duration)]
    pub lease_ttl: Duration,
    /// Reaper interval of the drill's control planes.
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
    pub reaper_interval: Duration,
    /// Reconcile grace of the drill's control planes.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub reconcile_grace: Duration,
    /// Slack on "no lease held past expiry plus the reaper interval", for the reaper's own pass.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub stuck_tolerance: Duration,
}

pub async fn run(args: DrillArgs) -> Result<(), CliError> {
    let exe = std::env::current_exe().map_err(|e| CliError::Input(format!("cannot find this executable: {e}")))?;
    let worker_bin = match args.worker_bin {
        Some(p) => p,
        None => exe.with_file_name(format!("braid-example-worker{}", std::env::consts::EXE_SUFFIX)),
    };
    if !worker_bin.is_file() {
        return Err(CliError::Input(format!(
            "no example worker at {} (build it with `cargo build --bin braid-example-worker`, or pass --worker-bin)",
            worker_bin.display()
        )));
    }
    let cfg = drill::Config {
        scenario: args.scenario,
        exe,
        worker_bin,
        database_url: args.database_url,
        redis_url: args.redis_url,
        services_script: args.services_script,
        services_dir: args.services_dir,
        lease_ttl: args.lease_ttl,
        reaper_interval: args.reaper_interval,
        reconcile_grace: args.reconcile_grace,
        deadline: args.deadline,
        stuck_tolerance: args.stuck_tolerance,
        keep: args.keep,
        work_dir: args.work_dir,
    };
    let report = drill::run(cfg).await.map_err(|e| CliError::Input(format!("drill: {e}")))?;
    if args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| CliError::Input(e.to_string()))?;
        outln!("{text}");
    } else {
        for line in report.text().lines() {
            outln!("{line}");
        }
    }
    if report.verdict == Status::Fail {
        let failed: Vec<String> = report.failures().iter().map(|c| format!("{} {}", c.id, c.name)).collect();
        return Err(CliError::Input(format!("drill {} FAILED: {}", report.scenario, failed.join("; "))));
    }
    Ok(())
}
