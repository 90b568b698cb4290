//! Shared by the drill tests: run `braid drill SCENARIO --json` through the real binary and check its report.

use braid_e2e::{braid_bin, stderr, worker_bin};
use serde_json::Value;
use std::process::{Command, Stdio};

/// Runs one drill and asserts exit 0, verdict PASS and every one of the six invariants PASS.
/// Needs DATABASE_URL and REDIS_URL (and, for redis-crash and postgres-restart,
/// BRAID_SERVICES_SCRIPT and BRAID_SERVICES_DIR) as `scripts/services start` exports them.
pub fn drill(scenario: &str) -> Value {
    for var in ["DATABASE_URL", "REDIS_URL"] {
        assert!(std::env::var_os(var).is_some(), "{var} must be set; run the tests via scripts/test");
    }
    let out = Command::new(braid_bin())
        .args(["drill", scenario, "--json"])
        .env("BRAID_WORKER_BIN", worker_bin())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run braid drill");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("braid drill {scenario}: no JSON report ({e}); exit {}\nstderr:\n{}", out.status, stderr(&out))
    });
    let failed: Vec<&Value> = report["invariants"]
        .as_array()
        .into_iter()
        .chain(report["checks"].as_array())
        .flatten()
        .filter(|c| c["status"] != "PASS")
        .collect();
    assert!(
        out.status.success() && report["verdict"] == "PASS" && failed.is_empty(),
        "braid drill {scenario}: exit {}, verdict {}, failed: {failed:#?}\nstderr:\n{}",
        out.status,
        report["verdict"],
        stderr(&out)
    );
    let invariants = report["invariants"].as_array().map_or(0, Vec::len);
    assert_eq!(invariants, 6, "six invariants are checked: {report:#}");
    report
}

/// A number from the report's figures.
pub fn figure(report: &Value, name: &str) -> u64 {
    report["figures"][name].as_u64().unwrap_or_else(|| panic!("figure {name} missing: {:#}", report["figures"]))
}

/// The scenario check named `id` (it must exist: a scenario that stops checking something fails here).
pub fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no check {id} in {:#}", report["checks"]))
}
