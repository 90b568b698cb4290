//! The simulator: the same seed gives the same event log, a seed sweep holds every invariant, and sabotaged fencing is caught.

use braid_control_plane::engine::Sabotage;
use braid_control_plane::sim::{self, SimConfig, SimReport};
use std::ops::Range;

/// Seeds swept on every test run; `BRAID_SIM_SEEDS=FROM..TO` sweeps others (e.g. 0..1000 by hand).
fn seeds() -> Range<u64> {
    let Ok(text) = std::env::var("BRAID_SIM_SEEDS") else { return 0..12 };
    let (a, b) = text.split_once("..").expect("BRAID_SIM_SEEDS is FROM..TO");
    a.parse().expect("FROM is a number")..b.parse().expect("TO is a number")
}

fn describe(failed: &[SimReport], sabotage: &str) -> String {
    failed
        .iter()
        .map(|r| {
            let v: Vec<String> = r.violations.iter().map(|v| format!("    {v}")).collect();
            format!(
                "seed {} broke an invariant (replay: braid simulate --seed {}{sabotage} --print-log):\n{}",
                r.seed,
                r.seed,
                v.join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_same_seed_gives_the_same_event_log_byte_for_byte() {
    let config = SimConfig { seed: 42, ..SimConfig::default() };
    let first = sim::simulate(&config).await.expect("simulate");
    let second = sim::simulate(&config).await.expect("simulate");
    assert!(first.log.lines().count() > 100, "a real log:\n{}", first.log);
    assert!(first.log.contains("FAULT"), "faults struck:\n{}", first.log);
    assert_eq!(first.log, second.log, "seed 42 gave two different logs");
    assert_eq!(first.digest(), second.digest());
    let other = sim::simulate(&SimConfig { seed: 43, ..SimConfig::default() }).await.expect("simulate");
    assert_ne!(first.log, other.log, "another seed, another history");
}

#[tokio::test]
async fn a_seed_sweep_with_every_fault_holds_every_invariant() {
    let range = seeds();
    let failed = sim::sweep(&SimConfig::default(), range.clone()).await.expect("sweep");
    assert!(failed.is_empty(), "{} of seeds {range:?} failed:\n{}", failed.len(), describe(&failed, ""));
}

#[tokio::test]
async fn the_sweep_finds_a_seed_that_shows_fencing_switched_off() {
    let config = SimConfig { sabotage: Sabotage::UnfencedResults, ..SimConfig::default() };
    // Stops at the first seed that shows it; seeds 0..40 hold several.
    for seed in 0..40 {
        let report = sim::simulate(&SimConfig { seed, ..config.clone() }).await.expect("simulate");
        if report.passed() {
            continue;
        }
        println!("{}", describe(std::slice::from_ref(&report), " --sabotage fencing"));
        assert!(
            report.violations.iter().any(|v| v.invariant == "one-accepted-result"),
            "fencing off must show as a stale result accepted: {:?}",
            report.violations
        );
        return;
    }
    panic!("no seed in 0..40 caught results applied without fencing");
}

#[tokio::test]
async fn without_faults_every_invariant_holds_and_the_system_drains() {
    let config = SimConfig { seed: 7, faults: Vec::new(), ..SimConfig::default() };
    let report = sim::simulate(&config).await.expect("simulate");
    assert!(report.passed(), "{:?}\n{}", report.violations, report.log);
    assert!(!report.log.contains("FAULT"), "no fault was asked for");
    assert!(report.log.contains("every run has ended"), "{}", report.log);
}

#[tokio::test]
async fn replaying_every_simulated_run_from_its_record_reproduces_its_events() {
    // Retries, expired leases, stale results, cancellations and non-retryable failures: each
    // ended run is replayed from what the store recorded, and must make the same events.
    let config = SimConfig { replay: true, ..SimConfig::default() };
    let failed = sim::sweep(&config, 0..4).await.expect("sweep");
    assert!(failed.is_empty(), "{}", describe(&failed, " --replay"));
}
