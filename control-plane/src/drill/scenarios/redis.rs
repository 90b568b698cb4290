//! redis-flush and redis-crash: Redis loses every queue entry and group mid-run; the reconciler restores the queue.

use super::{Harness, all_succeeded, services, workers};
use crate::drill::DrillError;
use crate::drill::invariants::Evidence;
use crate::drill::report::Check;
use crate::drill::workload::{CHAIN, Trigger, sleep_input};
use std::collections::BTreeSet;
use std::time::Duration;

const RUNS: usize = 200;
const SLEEP_MS: u64 = 300;
/// Finished tasks (of 4 per run) before the fault: mid-run.
const BEFORE_FAULT: u64 = 200;
/// How long redis-server stays down in redis-crash.
const DOWN: Duration = Duration::from_secs(1);

async fn flushall(url: &str) -> Result<(), DrillError> {
    let client = redis::Client::open(url).map_err(|e| DrillError::Redis(e.to_string()))?;
    let mut conn = client.get_multiplexed_async_connection().await.map_err(|e| DrillError::Redis(e.to_string()))?;
    redis::cmd("FLUSHALL").query_async::<()>(&mut conn).await.map_err(|e| DrillError::Redis(format!("FLUSHALL: {e}")))
}

pub async fn run(h: &mut Harness, crash: bool) -> Result<Evidence, DrillError> {
    h.start_control_plane(&[]).await?;
    h.start_workers(&workers(4, 32, "sleep")).await?;
    h.apply(&[CHAIN]).await?;
    h.workload = format!("{RUNS} runs of {CHAIN} (a, then b and c, then d: 4 sleep tasks of {SLEEP_MS} ms each)");
    let triggers = (0..RUNS).map(|_| Trigger { workflow: CHAIN.into(), input: sleep_input(SLEEP_MS), key: None });
    h.trigger(triggers.collect(), 16).await;
    let at = h
        .monitor
        .wait_for(&h.progress, "a quarter of the tasks finished", Duration::from_secs(30), |s| {
            s.finished_tasks() >= BEFORE_FAULT
        })
        .await?;
    let counts = format!(
        "{} ready, {} leased, {} pending, {} finished",
        at.tasks_in("ready"),
        at.tasks_in("leased"),
        at.tasks_in("pending"),
        at.finished_tasks()
    );
    let cp_pid = h.cps[0].pid();
    if crash {
        services(h, "redis-stop", &["KILL"]).await?;
        let at = h.strand("ready", "ready in the lost queue").await?;
        h.fault_at(at, format!("kill -9 redis-server (no AOF: it restarts empty) with tasks {counts}"));
        h.pause(DOWN).await?;
        services(h, "redis-start", &[]).await?;
        h.heal("redis-server started again, empty");
    } else {
        flushall(&h.cfg.redis_url).await?;
        let at = h.strand("ready", "ready in the flushed queue").await?;
        h.fault_at(at, format!("FLUSHALL on {} with tasks {counts}", h.cfg.redis_url));
        h.healed_at(at);
    }
    let ev = h.finish().await?;

    if crash {
        let alive = h.cps[0].poll().is_none() && h.cps[0].pid() == cp_pid;
        h.checks.push(Check::cond(
            "no-restart",
            "the control plane rode out the Redis crash without a restart",
            alive,
            format!("control plane pid {cp_pid} {}", if alive { "still running" } else { "exited" }),
        ));
    }
    h.checks.push(all_succeeded(&ev, &BTreeSet::new()));
    Ok(ev)
}
