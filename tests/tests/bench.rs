//! `braid bench all --quick --json` on PostgreSQL and Redis: every mode reports positive, finite figures and
//! completes every task it enqueued. The figures' size is never checked.

use braid_e2e::{braid_bin, stderr};
use serde_json::Value;
use std::process::{Command, Stdio};

const MODES: [&str; 5] = ["throughput", "latency", "dag", "drain", "soak"];

fn required(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("{var} must be set (run the tests via scripts/test, which starts PostgreSQL and Redis)"),
    }
}

#[test]
fn bench_all_quick_reports_every_mode() {
    let (db, redis) = (required("DATABASE_URL"), required("REDIS_URL"));
    let out = Command::new(braid_bin())
        .args(["bench", "all", "--quick", "--json", "--database-url", &db, "--redis-url", &redis])
        .stdin(Stdio::null())
        .output()
        .expect("run braid bench");
    assert!(out.status.success(), "braid bench failed:\n{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", String::from_utf8_lossy(&out.stdout)));
    assert!(doc["machine"]["cores"].as_u64().is_some_and(|c| c > 0), "machine facts: {}", doc["machine"]);
    let figures = doc["figures"].as_array().expect("figures");
    for mode in MODES {
        let reps = doc["modes"][mode]["repetitions"].as_array().unwrap_or_else(|| panic!("no mode {mode}: {doc}"));
        assert!(!reps.is_empty(), "{mode}: no repetitions");
        for r in reps {
            let tasks = r["tasks"].as_u64().unwrap_or(0);
            assert!(tasks > 0, "{mode}: no tasks in {r}");
            assert_eq!(r["completions"].as_u64(), Some(tasks), "{mode}: every task completes once: {r}");
        }
        let of_mode: Vec<&Value> = figures.iter().filter(|f| f["mode"] == mode).collect();
        assert!(!of_mode.is_empty(), "{mode}: no figures");
        for f in of_mode {
            for key in ["median", "min", "max"] {
                let v = f[key].as_f64().unwrap_or(f64::NAN);
                assert!(v.is_finite() && v > 0.0, "{mode}: {} {key} = {v}", f["name"]);
            }
        }
    }
    // With pg_stat_statements (scripts/services preloads it when installed) the cost per task is measured;
    // without it the report says why.
    let cost = &doc["database_cost"];
    if cost["available"] == true {
        let per_task = cost["phases"][0]["statements_per_task"].as_f64().unwrap_or(0.0);
        assert!(per_task > 0.0, "statements per task: {cost}");
    } else {
        assert!(cost["note"].as_str().is_some_and(|n| !n.is_empty()), "database cost: {cost}");
    }
}
