//! redis-flush, redis-crash and redis-crash-aof: Redis loses its queue (or restarts from its AOF) mid-run.

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

/// How Redis loses (or keeps) the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// FLUSHALL: every entry and group gone, the server stays up.
    Flush,
    /// kill -9 without persistence: it restarts empty.
    Crash,
    /// kill -9 with an append-only file fsynced on every write: it restarts with its queue.
    CrashWithAof,
}

async fn command(url: &str, args: &[&str]) -> Result<String, DrillError> {
    let client = redis::Client::open(url).map_err(|e| DrillError::Redis(e.to_string()))?;
    let mut conn = client.get_multiplexed_async_connection().await.map_err(|e| DrillError::Redis(e.to_string()))?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    let reply: redis::Value =
        cmd.query_async(&mut conn).await.map_err(|e| DrillError::Redis(format!("{args:?}: {e}")))?;
    Ok(match reply {
        redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        other => format!("{other:?}"),
    })
}

/// Turns the append-only file on at run time and waits until it holds the whole dataset.
async fn enable_aof(url: &str) -> Result<(), DrillError> {
    command(url, &["CONFIG", "SET", "appendfsync", "always"]).await?;
    command(url, &["CONFIG", "SET", "appendonly", "yes"]).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let info = command(url, &["INFO", "persistence"]).await?;
        let ready = info.contains("aof_enabled:1")
            && info.contains("aof_rewrite_in_progress:0")
            && info.contains("aof_rewrite_scheduled:0");
        if ready {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(DrillError::Redis("the append-only file was not written within 20s".into()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn run(h: &mut Harness, fault: Fault) -> Result<Evidence, DrillError> {
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
    let crash = fault != Fault::Flush;
    match fault {
        Fault::Crash => {
            services(h, "redis-stop", &["KILL"]).await?;
            let at = h.strand("ready", "ready in the lost queue").await?;
            h.fault_at(at, format!("kill -9 redis-server (no AOF: it restarts empty) with tasks {counts}"));
            h.pause(DOWN).await?;
            services(h, "redis-start", &[]).await?;
            h.heal("redis-server started again, empty");
        }
        Fault::CrashWithAof => {
            enable_aof(&h.cfg.redis_url).await?;
            services(h, "redis-stop", &["KILL"]).await?;
            let at = h.strand("ready", "ready when redis-server died").await?;
            h.fault_at(at, format!("kill -9 redis-server (AOF, fsync always) with tasks {counts}"));
            h.pause(DOWN).await?;
            services(h, "redis-start", &["aof"]).await?;
            h.heal("redis-server started again from its append-only file");
        }
        Fault::Flush => {
            command(&h.cfg.redis_url, &["FLUSHALL"]).await?;
            let at = h.strand("ready", "ready in the flushed queue").await?;
            h.fault_at(at, format!("FLUSHALL on {} with tasks {counts}", h.cfg.redis_url));
            h.healed_at(at);
        }
    }
    let ev = h.finish().await?;
    if fault == Fault::CrashWithAof {
        // Later users of this Redis expect it as scripts/services started it: no AOF.
        command(&h.cfg.redis_url, &["CONFIG", "SET", "appendonly", "no"]).await?;
    }

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
