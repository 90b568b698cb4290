//! dag: a burst of 1 → W → 1 runs submitted back to back (runs/s until the last sink completes), then the makespan of single runs on an idle system.

use super::super::client::DAG;
use super::super::recorder::Want;
use super::super::report::ModeRecord;
use super::super::stats::Spread;
use super::super::{Bench, BenchError, empty};
use super::secs;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

#[derive(Debug, Serialize)]
struct Burst {
    runs: u64,
    tasks: u64,
    completions: u64,
    seconds: f64,
    runs_per_s: f64,
}

#[derive(Debug, Serialize)]
struct Makespan {
    runs: u64,
    tasks: u64,
    completions: u64,
    ms: Option<Spread>,
    samples_ms: Vec<f64>,
}

#[derive(Debug, Serialize)]
struct Repetition {
    width: usize,
    tasks: u64,
    completions: u64,
    burst: Burst,
    makespan: Makespan,
}

pub async fn run(b: &mut Bench) -> Result<ModeRecord, BenchError> {
    b.ensure_workers().await?;
    let mut record = ModeRecord::default();
    let per_run = b.sizes.dag_width as u64 + 2;
    let warm = (b.sizes.dag_runs / 10).max(1);
    burst(b, "dag warm-up", warm).await?;
    for rep in 1..=b.sizes.repeat {
        let runs = b.sizes.dag_runs;
        let (completions, seconds) = burst(b, &format!("dag burst #{rep}"), runs).await?;
        let burst = Burst { runs, tasks: runs * per_run, completions, seconds, runs_per_s: runs as f64 / seconds };
        b.figures.add("dag", "burst", "dag burst (1 → W → 1)", "runs/s", burst.runs_per_s);
        let makespan = makespans(b, rep).await?;
        if let Some(s) = makespan.ms {
            b.figures.add("dag", "makespan_p50", "dag makespan p50 (idle)", "ms", s.p50);
            b.figures.add("dag", "makespan_p99", "dag makespan p99 (idle)", "ms", s.p99);
        }
        let r = Repetition {
            width: b.sizes.dag_width,
            tasks: burst.tasks + makespan.tasks,
            completions: burst.completions + makespan.completions,
            burst,
            makespan,
        };
        record.repetitions.push(serde_json::to_value(&r).unwrap_or_default());
    }
    Ok(record)
}

/// `runs` DAG runs back to back; returns (tasks completed, seconds from first enqueue to last sink).
async fn burst(b: &mut Bench, phase: &str, runs: u64) -> Result<(u64, f64), BenchError> {
    b.rec.reset(Want::Sinks(runs));
    let sent = Arc::new(AtomicU64::new(0));
    let client = b.client.clone();
    let how = b.bulk();
    let (first, at) =
        b.drive(phase, Some(Want::Sinks(runs)), runs, &sent, client.submit(DAG, runs, how, empty, &sent)).await?;
    let s = secs(first, at.reached);
    b.phase(format!("{phase}: {runs} runs in {s:.3}s: {:.1} runs/s", runs as f64 / s));
    Ok((b.rec.counts().acked, s))
}

/// Single runs one after the other: trigger instant → the sink's accepted result.
async fn makespans(b: &mut Bench, rep: u32) -> Result<Makespan, BenchError> {
    let runs = b.sizes.makespan_runs;
    let (mut samples, mut completions) = (Vec::new(), 0);
    let phase = format!("dag makespan #{rep}");
    for _ in 0..runs {
        b.rec.reset(Want::Sinks(1));
        let sent = Arc::new(AtomicU64::new(0));
        let client = b.client.clone();
        let t0 = Instant::now();
        let (_, at) = b.drive(&phase, Some(Want::Sinks(1)), 1, &sent, client.trigger(DAG, empty())).await?;
        samples.push(secs(t0, at.reached) * 1000.0);
        completions += b.rec.counts().acked;
    }
    let ms = Spread::of(samples.clone());
    if let Some(s) = ms {
        b.phase(format!("{phase}: {runs} runs: p50 {:.1} ms, p99 {:.1} ms", s.p50, s.p99));
    }
    Ok(Makespan { runs, tasks: runs * (b.sizes.dag_width as u64 + 2), completions, ms, samples_ms: samples })
}
