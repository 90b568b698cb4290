//! throughput: N one-task runs from one producer (bulk TriggerRuns, then one TriggerRun per run); N / (last completion − first enqueue).

use super::super::client::{NOOP, Submit};
use super::super::recorder::Want;
use super::super::report::{ModeRecord, PhaseCost};
use super::super::{Bench, BenchError, empty};
use super::secs;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

#[derive(Debug, Serialize)]
struct Repetition {
    method: &'static str,
    tasks: u64,
    completions: u64,
    rejected: u64,
    /// From the first enqueue to the last completion.
    seconds: f64,
    tasks_per_s: f64,
    /// From the first enqueue to the last trigger acknowledged.
    enqueue_seconds: f64,
}

pub async fn run(b: &mut Bench) -> Result<ModeRecord, BenchError> {
    b.ensure_workers().await?;
    let mut record = ModeRecord::default();
    for rep in 1..=b.sizes.repeat {
        let methods: &[(&str, Submit)] = if b.sizes.per_call {
            &[("per_call", b.per_call())]
        } else {
            &[("bulk", b.bulk()), ("per_call", b.per_call())]
        };
        for (i, &(method, how)) in methods.iter().enumerate() {
            let r = once(b, rep, method, how, i == 0).await?;
            let label =
                if method == "bulk" { "throughput, bulk TriggerRuns" } else { "throughput, one TriggerRun per run" };
            b.figures.add("throughput", method, label, "tasks/s", r.tasks_per_s);
            record.repetitions.push(serde_json::to_value(&r).unwrap_or_default());
        }
    }
    Ok(record)
}

async fn once(
    b: &mut Bench,
    rep: u32,
    method: &'static str,
    how: Submit,
    cost: bool,
) -> Result<Repetition, BenchError> {
    let n = b.sizes.tasks;
    let phase = format!("throughput {method} #{rep}");
    b.rec.reset(Want::Acked(n));
    let mark = match b.probe() {
        Some(p) if cost => Some(p.begin().await?),
        Some(_) | None => None,
    };
    let sent = Arc::new(AtomicU64::new(0));
    let client = b.client.clone();
    let (first, at) =
        b.drive(&phase, Some(Want::Acked(n)), n, &sent, client.submit(NOOP, n, how, empty, &sent)).await?;
    let c = b.rec.counts();
    if let (Some(mark), Some(probe)) = (mark, b.probe()) {
        let cost = probe.end(mark, c.acked).await?;
        b.figures.add("db", "statements_per_task", "db statements per task", "stmts", cost.statements_per_task);
        b.figures.add(
            "db",
            "write_transactions_per_task",
            "db write transactions per task",
            "xacts",
            cost.write_transactions_per_task,
        );
        b.db.phases.push(PhaseCost { phase: phase.clone(), cost });
    }
    let r = Repetition {
        method,
        tasks: n,
        completions: c.acked,
        rejected: c.rejected,
        seconds: secs(first, at.reached),
        tasks_per_s: n as f64 / secs(first, at.reached),
        enqueue_seconds: secs(first, at.submitted),
    };
    b.phase(format!("{phase}: {n} tasks in {:.3}s: {:.0} tasks/s", r.seconds, r.tasks_per_s));
    Ok(r)
}
