//! latency: tasks paced at a steady rate, one TriggerRun each with `{"t_ns"}`; p50, p99, max of start − enqueue.

use super::super::client::{Client, NOOP, stamped_input};
use super::super::recorder::Want;
use super::super::report::ModeRecord;
use super::super::stats::Spread;
use super::super::{Bench, BenchError};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Serialize)]
struct Repetition {
    tasks: u64,
    completions: u64,
    rate: f64,
    /// Milliseconds.
    latency_ms: Option<Spread>,
}

pub async fn run(b: &mut Bench) -> Result<ModeRecord, BenchError> {
    b.ensure_workers().await?;
    let mut record = ModeRecord::default();
    let (n, rate) = (b.sizes.latency_tasks, b.sizes.latency_rate);
    for rep in 1..=b.sizes.repeat {
        let phase = format!("latency #{rep}");
        b.rec.reset(Want::Acked(n));
        let sent = Arc::new(AtomicU64::new(0));
        b.drive(&phase, Some(Want::Acked(n)), n, &sent, paced(&b.client, n, rate, &sent)).await?;
        let c = b.rec.counts();
        let ms: Vec<f64> = b.rec.take_latencies().into_iter().map(|(_, l)| l as f64 / 1e6).collect();
        let spread = Spread::of(ms);
        if let Some(s) = spread {
            b.figures.add("latency", "p50", "latency p50 (enqueue → start)", "ms", s.p50);
            b.figures.add("latency", "p99", "latency p99 (enqueue → start)", "ms", s.p99);
            b.figures.add("latency", "max", "latency max (enqueue → start)", "ms", s.max);
            b.phase(format!(
                "{phase}: {n} tasks at {rate}/s: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                s.p50, s.p99, s.max
            ));
        }
        let r = Repetition { tasks: n, completions: c.acked, rate, latency_ms: spread };
        record.repetitions.push(serde_json::to_value(&r).unwrap_or_default());
    }
    Ok(record)
}

/// `n` TriggerRun calls, one every 1/`rate` s, each stamped at its tick; calls overlap if slow.
async fn paced(client: &Client, n: u64, rate: f64, sent: &Arc<AtomicU64>) -> Result<(), BenchError> {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.001)));
    let mut calls = FuturesUnordered::new();
    let mut issued = 0;
    while issued < n || !calls.is_empty() {
        tokio::select! {
            _ = tick.tick(), if issued < n => {
                let input = stamped_input();
                calls.push(async move { client.trigger(NOOP, input).await });
                issued += 1;
            }
            Some(r) = calls.next(), if !calls.is_empty() => {
                r?;
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}
