//! postgres-restart: `pg_ctl stop -m immediate`, then start, under a stream of keyed triggers that clients retry.

use super::{Harness, all_succeeded, exactly_once, services, stop_stream, workers};
use crate::drill::DrillError;
use crate::drill::invariants::Evidence;
use crate::drill::report::Check;
use crate::drill::workload::{SLEEP, TriggerStream, sleep_input};
use std::collections::BTreeSet;
use std::time::Duration;

const SLEEP_MS: u64 = 200;
const EVERY: Duration = Duration::from_millis(40);
/// Load before the fault, and after the heal.
const BEFORE: Duration = Duration::from_secs(3);
const AFTER: Duration = Duration::from_secs(4);
/// How long PostgreSQL stays down.
const DOWN: Duration = Duration::from_secs(2);
/// After PostgreSQL is back, leases are judged again once the control plane had time to reconnect and reap.
const REJUDGE_AFTER: Duration = Duration::from_secs(3);

pub async fn run(h: &mut Harness) -> Result<Evidence, DrillError> {
    h.start_control_plane(&[]).await?;
    h.start_workers(&workers(3, 16, "sleep")).await?;
    h.apply(&[SLEEP]).await?;
    h.workload = format!(
        "a stream of {SLEEP} runs ({SLEEP_MS} ms), one every {}ms with a unique idempotency key, at most 8 unanswered; a trigger that fails is sent again with its key until acknowledged",
        EVERY.as_millis()
    );
    let prefix = format!("pg-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let stream = TriggerStream::start(h.apis.clone(), SLEEP, sleep_input(SLEEP_MS), EVERY, 8, h.cfg.deadline, prefix);
    h.pause(BEFORE).await?;
    let cp_pid = h.cps[0].pid();
    h.monitor.pause_judging();
    let acked_before = stream.acked();
    services(h, "pg-stop", &["immediate"]).await?;
    h.fault(format!(
        "pg_ctl stop -m immediate (every connection cut, no checkpoint) after {acked_before} acknowledged triggers"
    ));
    h.pause(DOWN).await?;
    services(h, "pg-start", &[]).await?;
    let healed = h.heal(format!(
        "PostgreSQL started again (recovery from WAL); {} trigger call(s) failed so far",
        stream.failed_calls()
    ));
    h.monitor.judge_from(healed + REJUDGE_AFTER);
    let acked_at_heal = stream.acked();
    h.pause(AFTER).await?;
    let got = stop_stream(h, stream).await;
    let ev = h.finish().await?;

    let alive = h.cps[0].poll().is_none() && h.cps[0].pid() == cp_pid;
    h.checks.push(Check::cond(
        "no-restart",
        "the control plane reconnected to PostgreSQL by itself (same process)",
        alive,
        format!("control plane pid {cp_pid} {}", if alive { "still running" } else { "exited" }),
    ));
    let slowest = got.acks.iter().map(|a| a.latency_ms).max().unwrap_or(0);
    let down_ms = u64::try_from(DOWN.as_millis()).unwrap_or(u64::MAX);
    h.checks.push(Check::cond(
        "fault-hit",
        "the restart reached the clients (triggers failed and were retried, or waited out the outage)",
        got.retried_calls > 0 || slowest >= down_ms / 2,
        format!(
            "{} trigger call(s) failed and were sent again with their key; the slowest trigger was acknowledged after {slowest}ms",
            got.retried_calls
        ),
    ));
    let after = got.acks.len().saturating_sub(usize::try_from(acked_at_heal).unwrap_or(0));
    h.checks.push(Check::cond(
        "serving-again",
        "triggers were acknowledged after the restart",
        after > 0,
        format!("{after} trigger(s) acknowledged after PostgreSQL came back"),
    ));
    h.checks.push(Check::new(
        "all-acknowledged",
        "every trigger was eventually acknowledged",
        got.gave_up.iter().map(|g| format!("key {:?} ({})", g.key, g.last_error)).collect(),
        format!("{} acknowledged, {} given up", got.acks.len(), got.gave_up.len()),
    ));
    h.checks.push(exactly_once(&ev, &got));
    h.checks.push(all_succeeded(&ev, &BTreeSet::new()));
    Ok(ev)
}
