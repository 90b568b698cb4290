//! worker-crash: `kill -9` every worker while 200+ tasks are in flight, restart them: every run ends, none stuck.

use super::{Harness, all_succeeded, workers};
use crate::drill::DrillError;
use crate::drill::invariants::Evidence;
use crate::drill::report::Check;
use crate::drill::workload::{SLEEP, Trigger, sleep_input};
use std::collections::BTreeSet;
use std::time::Duration;

const RUNS: usize = 240;
const SLEEP_MS: u64 = 4000;
const WORKERS: usize = 4;
const SLOTS: u32 = 64;
const IN_FLIGHT: usize = 200;
/// How long the fleet stays down.
const DOWN: Duration = Duration::from_millis(500);

pub async fn run(h: &mut Harness) -> Result<Evidence, DrillError> {
    h.start_control_plane(&[]).await?;
    h.start_workers(&workers(WORKERS, SLOTS, "sleep")).await?;
    h.apply(&[SLEEP]).await?;
    h.workload = format!(
        "{RUNS} runs of {SLEEP} (one sleep task of {SLEEP_MS} ms, 5 attempts, backoff from 100ms), triggered 16 at a time"
    );
    let triggers = (0..RUNS).map(|_| Trigger { workflow: SLEEP.into(), input: sleep_input(SLEEP_MS), key: None });
    h.trigger(triggers.collect(), 16).await;
    let wanted = IN_FLIGHT as u64;
    h.monitor
        .wait_for(&h.progress, "200+ tasks in flight", Duration::from_secs(30), |s| s.tasks_in("leased") >= wanted)
        .await?;
    // Let the rest be leased too, briefly.
    let _ = h
        .monitor
        .wait_for(&h.progress, "every task leased", Duration::from_secs(2), |s| s.tasks_in("ready") == 0)
        .await;
    let pids: Vec<String> = h.workers.iter().map(|w| w.pid().to_string()).collect();
    for w in &mut h.workers {
        w.kill().await;
    }
    let leased = h.leased().await?;
    let at = h.strand("leased", "whose worker was killed").await?;
    h.fault_at(at, format!("kill -9 all {WORKERS} workers (pids {}) holding {} leases", pids.join(", "), leased.len()));
    h.pause(DOWN).await?;
    for i in 0..h.workers.len() {
        h.restart_worker(i, true).await?;
    }
    h.heal(format!("{WORKERS} workers restarted and connected"));
    let ev = h.finish().await?;

    h.checks.push(Check::cond(
        "in-flight",
        "200+ tasks in flight when the workers were killed",
        leased.len() >= IN_FLIGHT,
        format!("{} task(s) leased at the kill", leased.len()),
    ));
    let by_task = ev.snapshot.attempts_by_task();
    let mut offending = Vec::new();
    for (task, attempt, _) in &leased {
        let list = by_task.get(task).cloned().unwrap_or_default();
        let lost = list.iter().find(|a| a.attempt == *attempt).and_then(|a| a.outcome.as_deref());
        let won = list.iter().any(|a| a.attempt > *attempt && a.outcome.as_deref() == Some("succeeded"));
        if lost != Some("lease_expired") || !won {
            offending.push(format!("task {task} (attempt {attempt} ended {lost:?}; later success: {won})"));
        }
    }
    h.checks.push(Check::new(
        "re-leased",
        "every task in flight at the kill expired and succeeded on a later attempt",
        offending,
        format!("{} task(s) in flight at the kill", leased.len()),
    ));
    h.checks.push(all_succeeded(&ev, &BTreeSet::new()));
    Ok(ev)
}
