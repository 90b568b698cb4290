//! drain: N runs pre-loaded with no worker connected, then workers connect; tasks/s of the drain and the server's peak RSS.

use super::super::client::NOOP;
use super::super::recorder::Want;
use super::super::report::ModeRecord;
use super::super::{Bench, BenchError, empty};
use super::{mib, secs};
use serde::Serialize;
use std::future::ready;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

#[derive(Debug, Serialize)]
struct Repetition {
    tasks: u64,
    completions: u64,
    /// Pre-loading: first trigger to last acknowledgement.
    enqueue_seconds: f64,
    enqueue_per_s: f64,
    /// From starting the workers to the last completion.
    drain_seconds: f64,
    tasks_per_s: f64,
    /// Server RSS before the pre-load, and its peak (VmHWM, reset before the pre-load) after the drain.
    rss_before_mib: Option<f64>,
    peak_rss_mib: Option<f64>,
    rss_after_mib: Option<f64>,
}

pub async fn run(b: &mut Bench) -> Result<ModeRecord, BenchError> {
    let mut record = ModeRecord::default();
    let n = b.sizes.drain_tasks;
    for rep in 1..=b.sizes.repeat {
        b.stop_workers().await;
        let phase = format!("drain #{rep}");
        b.rec.reset(Want::Acked(n));
        let peak_reset = b.deployment().reset_peak_rss();
        let before = b.deployment().rss();
        let sent = Arc::new(AtomicU64::new(0));
        let client = b.client.clone();
        let how = b.bulk();
        let (first, loaded) =
            b.drive(&format!("{phase} pre-load"), None, n, &sent, client.submit(NOOP, n, how, empty, &sent)).await?;
        let enqueue_seconds = secs(first, loaded.submitted);
        b.phase(format!("{phase}: {n} runs pre-loaded in {enqueue_seconds:.3}s; connecting workers"));
        let t0 = Instant::now();
        b.start_workers().await?;
        let (_, at) = b.drive(&phase, Some(Want::Acked(n)), n, &sent, ready(Ok(()))).await?;
        let after = b.deployment().rss();
        let drain_seconds = secs(t0, at.reached);
        let r = Repetition {
            tasks: n,
            completions: b.rec.counts().acked,
            enqueue_seconds,
            enqueue_per_s: n as f64 / enqueue_seconds,
            drain_seconds,
            tasks_per_s: n as f64 / drain_seconds,
            rss_before_mib: before.map(|r| mib(r.now_bytes)),
            peak_rss_mib: after.filter(|_| peak_reset).map(|r| mib(r.peak_bytes)),
            rss_after_mib: after.map(|r| mib(r.now_bytes)),
        };
        b.figures.add("drain", "rate", "drain of a pre-loaded backlog", "tasks/s", r.tasks_per_s);
        b.figures.add("drain", "enqueue", "pre-load (trigger only)", "tasks/s", r.enqueue_per_s);
        if let Some(peak) = r.peak_rss_mib {
            b.figures.add("drain", "peak_rss", "control plane peak RSS (drain)", "MiB", peak);
        } else if let Some(after) = after {
            b.notes.push("could not reset the server's VmHWM: drain peak RSS is the peak since start".into());
            b.figures.add("drain", "peak_rss", "control plane peak RSS (since start)", "MiB", mib(after.peak_bytes));
        }
        b.phase(format!("{phase}: {n} tasks drained in {drain_seconds:.3}s: {:.0} tasks/s", r.tasks_per_s));
        record.repetitions.push(serde_json::to_value(&r).unwrap_or_default());
    }
    Ok(record)
}
