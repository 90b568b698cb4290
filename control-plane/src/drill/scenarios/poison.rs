//! poison-task: a task that crashes its worker process every time is dead-lettered after its attempts; other work flows.

use super::{Harness, all_succeeded, workers};
use crate::drill::DrillError;
use crate::drill::invariants::Evidence;
use crate::drill::process::Ending;
use crate::drill::report::Check;
use crate::drill::workload::{POISON, POISON_ATTEMPTS, SLEEP, Trigger, TriggerStream, sleep_input};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const SLEEP_MS: u64 = 300;
/// Normal runs are triggered this often while the poison task is retried.
const EVERY: Duration = Duration::from_millis(50);
/// How long the poison task may take to be dead-lettered.
const DEAD_LETTER_DEADLINE: Duration = Duration::from_secs(40);
/// SIGABRT: what `std::process::abort` dies of.
const SIGABRT: i32 = 6;

pub async fn run(h: &mut Harness) -> Result<Evidence, DrillError> {
    h.supervise = true;
    h.start_control_plane(&[]).await?;
    h.start_workers(&workers(3, 16, "sleep,crash")).await?;
    h.apply(&[SLEEP, POISON]).await?;
    h.workload = format!(
        "1 run of {POISON} (task boom, type crash: aborts its worker; {POISON_ATTEMPTS} attempts) and a stream of {SLEEP} runs ({SLEEP_MS} ms, one every {}ms) on 3 workers serving sleep and crash, restarted by the drill when they die",
        EVERY.as_millis()
    );
    let stream = TriggerStream::start(
        h.apis.clone(),
        SLEEP,
        sleep_input(SLEEP_MS),
        EVERY,
        8,
        h.cfg.deadline,
        format!("flow-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
    );
    h.pause(Duration::from_millis(500)).await?;
    let poison = h.trigger(vec![Trigger { workflow: POISON.into(), input: "{}".into(), key: None }], 1).await;
    let poison_run = poison.acks.first().map(|a| a.run_id.clone()).unwrap_or_default();
    h.fault(format!("poison run {poison_run} triggered: its task boom aborts whichever worker runs it"));

    let until = Instant::now() + DEAD_LETTER_DEADLINE;
    let mut finished_at_first_crash = None;
    let dead_at = loop {
        h.supervise_tick().await?;
        let s = h.monitor.latest();
        if finished_at_first_crash.is_none() && !h.crashes.is_empty() {
            finished_at_first_crash = Some(s.finished_tasks());
        }
        if s.tasks_in("failed") >= 1 {
            break Some((Instant::now(), s.finished_tasks()));
        }
        if Instant::now() >= until {
            break None;
        }
        h.progress.status(format!(
            "poison task retried: {} worker crash(es); {} runs acknowledged, {} tasks finished",
            h.crashes.len(),
            stream.acked(),
            s.finished_tasks()
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if let Some((at, _)) = dead_at {
        h.progress.event_at(at, "observed", "the poison task failed for good (dead-lettered)");
        h.healed_at(at);
    }
    h.pause(Duration::from_secs(1)).await?;
    let flow = stream.finish().await;
    h.progress.event("workload", format!("stream stopped: {} normal run(s) acknowledged", flow.acks.len()));
    h.triggers.extend(flow);
    let ev = h.finish().await?;

    let boom = ev.snapshot.tasks.iter().find(|t| t.run_id.to_string() == poison_run);
    let attempts: Vec<Option<String>> = boom
        .map(|t| ev.snapshot.attempts.iter().filter(|a| a.task_id == t.id).map(|a| a.outcome.clone()).collect())
        .unwrap_or_default();
    let expected = vec![Some("lease_expired".to_owned()); POISON_ATTEMPTS as usize];
    h.checks.push(Check::cond(
        "dead-lettered",
        "the poison task failed after its attempts, each lost with its worker",
        boom.is_some_and(|t| t.state == "failed") && attempts == expected,
        format!("task state {:?}, attempts {attempts:?}", boom.map(|t| t.state.clone())),
    ));
    let listed = h.apis[0].dead_letters().await?;
    let dl = listed.iter().find(|d| d.run_id == poison_run);
    h.checks.push(Check::cond(
        "dlq-listed",
        "ListDeadLetters shows it, with its attempts and error type lease_expired",
        dl.is_some_and(|d| {
            d.attempts == POISON_ATTEMPTS && d.last_error.as_ref().is_some_and(|e| e.r#type == "lease_expired")
        }),
        format!(
            "{} dead letter(s) listed; the poison's: {:?}",
            listed.len(),
            dl.map(|d| (d.attempts, d.last_error.as_ref().map(|e| e.r#type.clone())))
        ),
    ));
    let aborted = h.crashes.iter().filter(|(_, _, e)| *e == Ending::Signalled(SIGABRT)).count();
    h.checks.push(Check::cond(
        "crashes",
        "each attempt of the poison task crashed one worker (SIGABRT), and the drill restarted it",
        aborted == POISON_ATTEMPTS as usize && h.crashes.len() == aborted,
        format!("{} worker crash(es), {aborted} by SIGABRT", h.crashes.len()),
    ));
    let flowed = match (finished_at_first_crash, dead_at) {
        (Some(a), Some((_, b))) => b.saturating_sub(a),
        _ => 0,
    };
    h.checks.push(Check::cond(
        "kept-flowing",
        "other tasks kept finishing while the poison task was retried",
        flowed > 0,
        format!("{flowed} task(s) finished between the first crash and the dead letter"),
    ));
    h.checks.push(all_succeeded(&ev, &BTreeSet::from([poison_run])));
    Ok(ev)
}
