//! zombie-worker: SIGSTOP a worker holding leases past the TTL, let others take them, SIGCONT it: its late results are rejected.

use super::{Harness, all_succeeded};
use crate::drill::DrillError;
use crate::drill::invariants::Evidence;
use crate::drill::process::WorkerSpec;
use crate::drill::report::Check;
use crate::drill::workload::{SLEEP, Trigger, sleep_input};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const RUNS: usize = 16;
const SLEEP_MS: u64 = 2500;
/// How long the zombie's late results may take to come back after SIGCONT.
const LATE_DEADLINE: Duration = Duration::from_secs(15);

fn spec(name: &str) -> WorkerSpec {
    WorkerSpec { name: name.into(), slots: RUNS as u32, types: "sleep".into(), control_plane: 0 }
}

pub async fn run(h: &mut Harness) -> Result<Evidence, DrillError> {
    h.start_control_plane(&[]).await?;
    h.start_workers(&[spec("zombie")]).await?;
    h.apply(&[SLEEP]).await?;
    h.workload =
        format!("{RUNS} runs of {SLEEP} (one sleep task of {SLEEP_MS} ms, 5 attempts), all leased to worker zombie");
    let triggers = (0..RUNS).map(|_| Trigger { workflow: SLEEP.into(), input: sleep_input(SLEEP_MS), key: None });
    h.trigger(triggers.collect(), RUNS).await;
    let want = RUNS as u64;
    h.monitor
        .wait_for(&h.progress, "every task leased to the zombie", Duration::from_secs(30), |s| {
            s.tasks_in("leased") >= want
        })
        .await?;
    h.workers[0].signal("STOP").await?;
    let held = h.leased().await?;
    let at = h.strand("leased", "held by the stopped worker").await?;
    h.fault_at(at, format!("SIGSTOP worker zombie (pid {}) holding {} leases", h.workers[0].pid(), held.len()));
    h.start_workers(&[spec("fresh1"), spec("fresh2")]).await?;
    h.heal("fresh1 and fresh2 serve sleep: they take the tasks once the zombie's leases expire");
    // Resume the zombie while the newer attempts still run: its late results then meet a task
    // leased to someone else, the moment fencing exists for.
    let until = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = h.leased().await?;
        let taken = held.iter().filter(|(t, a, _)| now.iter().any(|(id, attempt, _)| id == t && attempt > a)).count();
        if taken == held.len() {
            break;
        }
        if std::time::Instant::now() >= until {
            return Err(DrillError::Workload(format!(
                "only {taken} of {} tasks were re-leased within 30s",
                held.len()
            )));
        }
        h.progress.status(format!("waiting for the zombie's tasks to be re-leased: {taken}/{}", held.len()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.progress
        .event("observed", format!("all {} tasks re-leased to fresh1 and fresh2, which are running them", held.len()));
    h.workers[0].signal("CONT").await?;
    h.fault("SIGCONT worker zombie: its results for the old leases arrive while the newer attempts run");

    // Wait until the zombie has an answer for every lease it held.
    let keys: BTreeSet<(String, u32, String)> =
        held.iter().map(|(t, a, l)| (t.to_string(), *a as u32, l.map(|l| l.to_string()).unwrap_or_default())).collect();
    let until = std::time::Instant::now() + LATE_DEADLINE;
    loop {
        let ledger = h.ledgers().into_iter().find(|l| l.worker == "zombie");
        let answered =
            ledger.map_or(0, |l| l.lines.iter().filter(|x| x.event == "ack" && keys.contains(&x.key())).count());
        if answered >= keys.len() {
            h.progress.event("observed", format!("the zombie's {answered} late result(s) were answered"));
            break;
        }
        if std::time::Instant::now() >= until {
            h.notes.push(format!(
                "only {answered} of the zombie's {} results were answered within {LATE_DEADLINE:?}",
                keys.len()
            ));
            break;
        }
        h.progress.status(format!("waiting for the zombie's late results: {answered}/{} answered", keys.len()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ev = h.finish().await?;

    let zombie_lines: Vec<_> =
        ev.ledgers.iter().filter(|l| l.worker == "zombie").flat_map(|l| l.lines.clone()).collect();
    let acks: BTreeMap<_, _> = zombie_lines.iter().filter(|l| l.event == "ack").map(|l| (l.key(), l.clone())).collect();
    let mut offending = Vec::new();
    for k in &keys {
        match acks.get(k) {
            Some(a) if a.is("ack", "rejected") && a.code == Some(9) => {}
            Some(a) => offending.push(format!("task {} attempt {} ({:?}, code {:?})", k.0, k.1, a.outcome, a.code)),
            None => offending.push(format!("task {} attempt {} (no answer)", k.0, k.1)),
        }
    }
    h.checks.push(Check::new(
        "late-rejected",
        "every late result of the zombie was rejected as stale (code 9)",
        offending,
        format!("{} lease(s) held by the zombie when it was stopped", keys.len()),
    ));
    let zombie_streams: BTreeSet<String> = zombie_lines.iter().map(|l| l.worker_id.clone()).collect();
    let by_task = ev.snapshot.attempts_by_task();
    let mut offending = Vec::new();
    for (task, attempt, _) in &held {
        let t = ev.snapshot.tasks.iter().find(|t| t.id == *task);
        let win = by_task.get(task).into_iter().flatten().find(|a| a.outcome.as_deref() == Some("succeeded"));
        let ok = match (t, win) {
            (Some(t), Some(w)) => {
                w.attempt > *attempt
                    && !w.worker_id.as_ref().is_some_and(|s| zombie_streams.contains(s))
                    && t.output == w.output
            }
            _ => false,
        };
        if !ok {
            offending.push(format!("task {task} (winner: {:?})", win.map(|w| (w.attempt, w.worker_id.clone()))));
        }
    }
    h.checks.push(Check::new(
        "newer-output",
        "each task's output is the newer attempt's, from another worker",
        offending,
        format!("{} task(s) re-run while the zombie was stopped", held.len()),
    ));
    h.checks.push(all_succeeded(&ev, &BTreeSet::new()));
    Ok(ev)
}
