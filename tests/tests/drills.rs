//! `braid drill` end to end: each fault scenario that needs only DATABASE_URL and REDIS_URL, through the real binary.
//!
//! The drills run one at a time (each starts its own control planes and workers, and their
//! timing matters), and redis-flush runs FLUSHALL on REDIS_URL. The scenarios that restart the
//! shared Redis or PostgreSQL are in `drills_services.rs`, which must run alone.

mod drill_support;

use drill_support::{check, drill, figure};
use std::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn run(scenario: &str) -> serde_json::Value {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    drill(scenario)
}

#[test]
fn worker_crash_with_200_tasks_in_flight_loses_nothing() {
    let r = run("worker-crash");
    assert!(figure(&r, "stranded_tasks") >= 200, "{:#}", r["figures"]);
    assert!(figure(&r, "tasks_re_leased") >= 200, "{:#}", r["figures"]);
    assert_eq!(check(&r, "re-leased")["status"], "PASS");
}

#[test]
fn a_zombie_workers_late_results_are_rejected() {
    let r = run("zombie-worker");
    assert!(figure(&r, "stale_results_rejected") >= 1, "{:#}", r["figures"]);
    assert_eq!(check(&r, "late-rejected")["status"], "PASS");
    assert_eq!(check(&r, "newer-output")["status"], "PASS");
}

#[test]
fn a_drained_worker_runs_each_task_exactly_once() {
    let r = run("drain");
    assert_eq!(figure(&r, "tasks_re_leased"), 0, "{:#}", r["figures"]);
    assert_eq!(check(&r, "exactly-once")["status"], "PASS");
}

#[test]
fn a_redis_flushall_mid_run_loses_nothing() {
    let r = run("redis-flush");
    assert!(figure(&r, "stranded_tasks") >= 1, "the flush must strand ready tasks: {:#}", r["figures"]);
}

#[test]
fn a_poison_task_is_dead_lettered_and_the_rest_flows() {
    let r = run("poison-task");
    assert_eq!(figure(&r, "dead_letters"), 1, "{:#}", r["figures"]);
    assert_eq!(check(&r, "kept-flowing")["status"], "PASS");
}

#[test]
fn an_idempotency_storm_across_two_control_planes_makes_one_run() {
    let r = run("idempotency-storm");
    assert_eq!(figure(&r, "runs_acknowledged"), 1, "{:#}", r["figures"]);
}

#[test]
fn a_control_plane_crash_after_a_commit_and_under_load_loses_nothing() {
    let r = run("control-plane-crash");
    assert_eq!(check(&r, "failpoint")["status"], "PASS");
    assert_eq!(check(&r, "reconnected")["status"], "PASS");
}
