//! control-plane-crash: the control plane dies under load (a failpoint right after a commit, then `kill -9`) and restarts.

use super::{Harness, all_succeeded, exactly_once, stop_stream, workers};
use crate::drill::DrillError;
use crate::drill::invariants::Evidence;
use crate::drill::process::Ending;
use crate::drill::report::Check;
use crate::drill::workload::{CHAIN, TriggerStream, sleep_input};
use crate::engine::failpoint;
use std::collections::BTreeSet;
use std::time::Duration;

const SLEEP_MS: u64 = 300;
const EVERY: Duration = Duration::from_millis(40);
/// The failpoint fires on this publish (about three per run: a, then b and c, then d).
const CRASH_ON_PUBLISH: u64 = 60;
/// How long the control plane stays down each time.
const DOWN: Duration = Duration::from_millis(800);
/// Load between the restart and the next crash, and before the stream stops.
const LOAD: Duration = Duration::from_secs(2);
const WORKERS: usize = 3;
/// How long the workers may take to reconnect by themselves.
const RECONNECT_DEADLINE: Duration = Duration::from_secs(20);
/// Leases are judged again this long after a restart (expired ones are reaped at start).
const REJUDGE_AFTER: Duration = Duration::from_secs(2);
const SIGABRT: i32 = 6;

/// Task ids the failpoint named in the control plane's log: committed ready, never published.
fn unpublished(log: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.contains("failpoint crash-after-commit")) else { return Vec::new() };
    let inner = line.split('[').nth(1).and_then(|rest| rest.split(']').next()).unwrap_or_default();
    inner.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
}

async fn reconnected(h: &mut Harness, times: u32) -> Result<(), DrillError> {
    for w in &mut h.workers {
        w.wait_connects(times, RECONNECT_DEADLINE).await?;
    }
    h.progress.event("observed", format!("all {WORKERS} workers reconnected by themselves (stream {times} each)"));
    Ok(())
}

pub async fn run(h: &mut Harness) -> Result<Evidence, DrillError> {
    let armed = [(failpoint::VAR, format!("crash-after-commit:{CRASH_ON_PUBLISH}"))];
    h.start_control_plane(&armed).await?;
    h.start_workers(&workers(WORKERS, 32, "sleep")).await?;
    h.apply(&[CHAIN]).await?;
    h.workload = format!(
        "a stream of {CHAIN} runs (4 sleep tasks of {SLEEP_MS} ms), one every {}ms with a unique idempotency key, retried with its key until acknowledged; cp1 runs with {}=crash-after-commit:{CRASH_ON_PUBLISH}",
        EVERY.as_millis(),
        failpoint::VAR
    );
    let prefix = format!("cp-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let stream = TriggerStream::start(h.apis.clone(), CHAIN, sleep_input(SLEEP_MS), EVERY, 8, h.cfg.deadline, prefix);

    // 1. The failpoint: the process aborts between a commit and its publish.
    let ending = h.cps[0].wait(Duration::from_secs(30)).await;
    h.monitor.pause_judging();
    let lost = unpublished(&h.cps[0].log);
    h.fault(format!(
        "cp1 aborted by the failpoint on publish {CRASH_ON_PUBLISH}, after committing {} ready task(s) it never published ({ending:?})",
        lost.len()
    ));
    h.pause(DOWN).await?;
    let healed = h.restart_control_plane(0, &[]).await?;
    h.healed_at(healed);
    h.monitor.judge_from(healed + REJUDGE_AFTER);
    reconnected(h, 2).await?;
    h.pause(LOAD).await?;

    // 2. kill -9 under load.
    h.monitor.pause_judging();
    let s = h.monitor.latest();
    h.cps[0].signal("KILL").await?;
    h.fault(format!("kill -9 cp1 with {} task(s) leased and {} ready", s.tasks_in("leased"), s.tasks_in("ready")));
    h.pause(DOWN).await?;
    let healed = h.restart_control_plane(0, &[]).await?;
    h.healed_at(healed);
    h.monitor.judge_from(healed + REJUDGE_AFTER);
    reconnected(h, 3).await?;
    h.pause(LOAD).await?;
    let got = stop_stream(h, stream).await;
    let ev = h.finish().await?;

    h.checks.push(Check::cond(
        "failpoint",
        "the failpoint crashed cp1 right after a commit (SIGABRT)",
        ending == Some(Ending::Signalled(SIGABRT)) && !lost.is_empty(),
        format!("cp1 ended {ending:?}; the failpoint named {} unpublished task(s)", lost.len()),
    ));
    let mut offending = Vec::new();
    for id in &lost {
        let t = ev.snapshot.tasks.iter().find(|t| t.id.to_string() == *id);
        if t.is_none_or(|t| t.state != "succeeded") {
            offending.push(format!("task {id} ({:?})", t.map(|t| t.state.clone())));
        }
    }
    h.checks.push(Check::new(
        "unpublished-recovered",
        "the tasks committed but never published were queued by the reconciler and succeeded",
        offending,
        format!("{} task(s): {}", lost.len(), lost.join(", ")),
    ));
    let mut offending = Vec::new();
    for w in &mut h.workers {
        let ending = w.ending();
        if w.generation != 1 || ending != Ending::Running || w.connects() < 3 {
            offending.push(format!("worker {}.{} ({ending:?}, {} stream(s))", w.spec.name, w.generation, w.connects()));
        }
    }
    let streams: Vec<String> = h.workers.iter().map(|w| format!("{} {}", w.spec.name, w.connects())).collect();
    h.checks.push(Check::new(
        "reconnected",
        "the workers reconnected by themselves after each restart (never restarted)",
        offending,
        format!("streams opened per worker: {}", streams.join(", ")),
    ));
    h.checks.push(exactly_once(&ev, &got));
    h.checks.push(all_succeeded(&ev, &BTreeSet::new()));
    Ok(ev)
}
