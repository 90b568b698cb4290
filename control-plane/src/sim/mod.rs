//! Deterministic simulation and replay: the real engine on virtual time, with simulated workers, queue and faults.
//!
//! `braid simulate` runs the engine (the same `engine/` code a server runs, on an in-memory
//! SQLite store) against simulated workers, a simulated queue and faults drawn from a seed, all
//! on one task in virtual time: every call is awaited before the next starts, so the same seed
//! gives the same event log, byte for byte. At the end it checks the drill invariants.
//! `braid replay` drives the same engine with a recorded run's outcomes (`replay.rs`).

mod clock;
mod entropy;
mod faults;
mod invariants;
mod ledger;
mod log;
mod queue;
pub mod replay;
mod setup;
mod worker;
mod world;

pub use faults::{Fault, parse_faults};
pub use invariants::Violation;

use crate::domain::definition::WorkflowDefinition;
use crate::engine::{EngineError, Sabotage};
use std::time::Duration;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    /// The workflow every run uses; None for the built-in one (a diamond of four tasks).
    pub workflow: Option<WorkflowDefinition>,
    /// Simulated worker processes, each with a few slots.
    pub workers: usize,
    pub faults: Vec<Fault>,
    /// How long faults strike and clients trigger; then the system drains with faults off.
    pub duration: Duration,
    /// API triggers made by the simulated client (a cron schedule adds its own runs).
    pub runs: usize,
    /// A guarantee dropped on purpose, to show that the checks catch it.
    pub sabotage: Sabotage,
    /// Also replay every ended run from its record and require the same events (`braid replay`).
    pub replay: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            workflow: None,
            workers: 3,
            faults: Fault::ALL.to_vec(),
            duration: Duration::from_secs(60),
            runs: 20,
            sabotage: Sabotage::None,
            replay: false,
        }
    }
}

/// What a simulation did and found.
#[derive(Debug, Clone)]
pub struct SimReport {
    pub seed: u64,
    /// The event log: actions, answers and every run's events, ids replaced by stable names.
    pub log: String,
    pub violations: Vec<Violation>,
    /// One line of counts (runs by state, leases, results, stale results).
    pub summary: String,
}

impl SimReport {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// SHA-256 of the log, to compare two runs at a glance.
    pub fn digest(&self) -> String {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(self.log.as_bytes()))
    }
}

/// Why a simulation could not run at all (a broken invariant is a report, not an error).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("simulation setup failed: {0}")]
    Setup(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Runs one simulation.
pub async fn simulate(config: &SimConfig) -> Result<SimReport, SimError> {
    world::World::build(config).await?.run().await
}

/// Runs `seeds` one after another and returns the reports of those that broke an invariant
/// (each report names its seed, so that `braid simulate --seed S` replays it).
pub async fn sweep(config: &SimConfig, seeds: impl IntoIterator<Item = u64>) -> Result<Vec<SimReport>, SimError> {
    let mut failed = Vec::new();
    for seed in seeds {
        let report = simulate(&SimConfig { seed, ..config.clone() }).await?;
        if !report.passed() {
            failed.push(report);
        }
    }
    Ok(failed)
}
