//! drain: SIGTERM to a worker running tasks longer than the lease TTL: each runs exactly once, none reassigned.

use super::{Harness, all_succeeded};
use crate::drill::DrillError;
use crate::drill::invariants::Evidence;
use crate::drill::process::{Ending, WorkerSpec};
use crate::drill::report::Check;
use crate::drill::workload::{SLEEP, Trigger, sleep_input};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const RUNS: usize = 8;
/// Almost three lease TTLs: only heartbeats during the drain keep the leases.
const SLEEP_MS: u64 = 4000;
/// How long the drained worker may take to exit.
const EXIT_DEADLINE: Duration = Duration::from_secs(30);

fn spec(name: &str) -> WorkerSpec {
    WorkerSpec { name: name.into(), slots: RUNS as u32, types: "sleep".into(), control_plane: 0 }
}

pub async fn run(h: &mut Harness) -> Result<Evidence, DrillError> {
    h.start_control_plane(&[]).await?;
    h.start_workers(&[spec("drained")]).await?;
    h.apply(&[SLEEP]).await?;
    h.workload = format!(
        "{RUNS} runs of {SLEEP} (one sleep task of {SLEEP_MS} ms, longer than the lease TTL), all on worker drained; worker bystander could take any lost lease"
    );
    let triggers = (0..RUNS).map(|_| Trigger { workflow: SLEEP.into(), input: sleep_input(SLEEP_MS), key: None });
    h.trigger(triggers.collect(), RUNS).await;
    let want = RUNS as u64;
    h.monitor
        .wait_for(&h.progress, "every task leased to the drained worker", Duration::from_secs(30), |s| {
            s.tasks_in("leased") >= want
        })
        .await?;
    let held = h.leased().await?;
    h.start_workers(&[spec("bystander")]).await?;
    h.workers[0].signal("TERM").await?;
    h.fault(format!(
        "SIGTERM worker drained (pid {}) running {} tasks of {SLEEP_MS} ms",
        h.workers[0].pid(),
        held.len()
    ));
    let ending = h.workers[0].wait(EXIT_DEADLINE).await;
    h.progress.event("observed", format!("worker drained exited: {ending:?}"));
    let ev = h.finish().await?;

    h.checks.push(Check::cond(
        "clean-exit",
        "the drained worker finished its tasks and exited 0",
        ending == Some(Ending::Exited(0)),
        format!("{ending:?} within {EXIT_DEADLINE:?}"),
    ));
    let by_task = ev.snapshot.attempts_by_task();
    let mut starts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in &ev.ledgers {
        for line in l.lines.iter().filter(|x| x.event == "start") {
            starts.entry(line.task_id.clone()).or_default().push(l.label());
        }
    }
    let mut offending = Vec::new();
    for (task, _, _) in &held {
        let attempts: Vec<(i32, Option<String>)> =
            by_task.get(task).into_iter().flatten().map(|a| (a.attempt, a.outcome.clone())).collect();
        let ran = starts.get(&task.to_string()).cloned().unwrap_or_default();
        if attempts != [(1, Some("succeeded".to_owned()))] || ran != ["drained.1"] {
            offending.push(format!("task {task} (attempts {attempts:?}, started on {ran:?})"));
        }
    }
    h.checks.push(Check::new(
        "exactly-once",
        "each drained task ran exactly once, on the drained worker, and was never reassigned",
        offending,
        format!("{} task(s) running when SIGTERM arrived", held.len()),
    ));
    h.checks.push(all_succeeded(&ev, &BTreeSet::new()));
    Ok(ev)
}
