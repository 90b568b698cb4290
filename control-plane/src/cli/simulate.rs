//! `braid simulate`: one seed or a sweep of seeds through the simulator, the event log, and the failing seeds.

use super::CliError;
use crate::domain::definition::WorkflowDefinition;
use crate::engine::Sabotage;
use crate::sim::{self, Fault, SimConfig, SimReport};
use std::path::PathBuf;
use std::time::Duration;

/// Run the real engine on virtual time with simulated workers, queue and faults, and check the invariants.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "The same seed gives the same event log, byte for byte (compare the printed sha256).\n\
Examples:\n  braid simulate --seed 7\n  braid simulate --seed 7 --log sim-7.log\n  braid simulate --seeds 0..100 \
--faults worker-stall,redis-flush\n  braid simulate --seeds 0..50 --sabotage fencing   # the checks must catch it\n\
Exit code: 0 when every invariant holds for every seed, 1 otherwise. See docs/simulation.md.")]
pub struct SimulateArgs {
    /// The seed: every choice of the simulation (timings, outcomes, faults, jitter) comes from it.
    #[arg(long, default_value_t = 0, conflicts_with = "seeds")]
    pub seed: u64,
    /// Sweep the seeds FROM..TO (TO excluded), printing one line per seed and the failing ones.
    #[arg(long, value_name = "FROM..TO", value_parser = parse_range)]
    pub seeds: Option<std::ops::Range<u64>>,
    /// The workflow file (YAML or JSON) every run uses [default: a built-in diamond of four tasks].
    #[arg(long, value_name = "FILE")]
    pub workflow: Option<PathBuf>,
    /// Simulated worker processes (4 slots each).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: u16,
    /// API triggers (a cron schedule every 15 s adds runs of its own).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub runs: u32,
    /// Faults to inject, comma-separated: all, none, or some of worker-crash, worker-stall, redis-flush,
    /// duplicate-delivery, store-outage, lost-answer, cancel.
    #[arg(long, default_value = "all", value_parser = parse_fault_list)]
    pub faults: FaultList,
    /// Virtual time during which clients trigger and faults strike; then the system drains.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Drop a guarantee on purpose (fencing: stale results are applied), to see the checks catch it.
    #[arg(long, default_value = "none")]
    pub sabotage: Sabotage,
    /// Also replay every ended run from its record (as `braid replay` does) and require the same events.
    #[arg(long)]
    pub replay: bool,
    /// Write the event log to FILE (one seed), or the logs of failing seeds as FILE.SEED (a sweep).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Print the event log on stdout.
    #[arg(long)]
    pub print_log: bool,
}

/// The faults of `--faults`.
#[derive(Debug, Clone)]
pub struct FaultList(pub Vec<Fault>);

fn parse_fault_list(s: &str) -> Result<FaultList, String> {
    sim::parse_faults(s).map(FaultList)
}

fn parse_range(s: &str) -> Result<std::ops::Range<u64>, String> {
    let (a, b) = s.split_once("..").ok_or_else(|| format!("{s:?} is not FROM..TO"))?;
    let a: u64 = a.trim().parse().map_err(|_| format!("{a:?} is not a seed"))?;
    let b: u64 = b.trim().parse().map_err(|_| format!("{b:?} is not a seed"))?;
    if b <= a {
        return Err(format!("{s:?} is empty"));
    }
    Ok(a..b)
}

pub async fn run(args: SimulateArgs) -> Result<(), CliError> {
    let workflow = match &args.workflow {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::Input(format!("cannot read {}: {e}", path.display())))?;
            let def = WorkflowDefinition::from_file_contents(&path.to_string_lossy(), &text)
                .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
            Some(def)
        }
    };
    let config = SimConfig {
        seed: args.seed,
        workflow,
        workers: usize::from(args.workers),
        faults: args.faults.0.clone(),
        duration: args.duration,
        runs: args.runs as usize,
        sabotage: args.sabotage,
        replay: args.replay,
    };
    let seeds = args.seeds.clone().unwrap_or(args.seed..args.seed + 1);
    let sweep = args.seeds.is_some();
    let mut failed = Vec::new();
    for seed in seeds.clone() {
        let report =
            sim::simulate(&SimConfig { seed, ..config.clone() }).await.map_err(|e| CliError::Input(e.to_string()))?;
        print_report(&args, &report, sweep)?;
        if !report.passed() {
            failed.push(seed);
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = failed.iter().map(u64::to_string).collect();
    let faults: Vec<&str> = args.faults.0.iter().map(|f| f.name()).collect();
    let faults = if faults.is_empty() { "none".to_owned() } else { faults.join(",") };
    Err(CliError::Input(format!(
        "{} of {} seed(s) broke an invariant: {}; replay one with `braid simulate --seed {} --faults {faults}{}`",
        failed.len(),
        seeds.count(),
        list.join(", "),
        failed[0],
        if args.sabotage == Sabotage::None { String::new() } else { format!(" --sabotage {}", args.sabotage.name()) }
    )))
}

fn print_report(args: &SimulateArgs, report: &SimReport, sweep: bool) -> Result<(), CliError> {
    let verdict = if report.passed() { "ok" } else { "FAILED" };
    outln!("seed {}: {verdict}: {}", report.seed, report.summary);
    for v in &report.violations {
        outln!("  {v}");
    }
    let lines = report.log.lines().count();
    let written = match &args.log {
        Some(path) if !sweep || !report.passed() => {
            let path = if sweep { PathBuf::from(format!("{}.{}", path.display(), report.seed)) } else { path.clone() };
            std::fs::write(&path, &report.log)
                .map_err(|e| CliError::Input(format!("cannot write {}: {e}", path.display())))?;
            format!(", written to {}", path.display())
        }
        _ => String::new(),
    };
    if !sweep || !report.passed() {
        outln!("  event log: {lines} lines, sha256 {}{written}", report.digest());
    }
    if args.print_log {
        for line in report.log.lines() {
            outln!("{line}");
        }
    }
    Ok(())
}
