//! The "scheduler" background task: tokio-cron-scheduler wakes it every second; each wake-up runs one leader-only pass.
//!
//! tokio-cron-scheduler only provides the wake-ups (a `* * * * * *` job that notifies this
//! loop). Which ticks are due, catch-up and exactly-once are decided by the pass
//! ([`Engine::scheduler_pass`]) from the engine's injected clock and the database, so passes
//! never overlap (one loop runs them) and shutdown is: stop waiting, shut the job scheduler down.

use crate::engine::Engine;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

/// Wake-ups of the scheduler loop: every second, on the second.
const WAKE_CRON: &str = "* * * * * *";

/// Runs scheduler passes until `stop`.
pub async fn run(engine: Engine, stop: CancellationToken) -> Result<(), String> {
    let wake = Arc::new(Notify::new());
    let mut cron = JobScheduler::new().await.map_err(|e| format!("cannot start the job scheduler: {e}"))?;
    let w = wake.clone();
    let job = Job::new_async(WAKE_CRON, move |_, _| {
        let w = w.clone();
        Box::pin(async move { w.notify_one() })
    })
    .map_err(|e| format!("cannot make the wake-up job: {e}"))?;
    cron.add(job).await.map_err(|e| format!("cannot add the wake-up job: {e}"))?;
    cron.start().await.map_err(|e| format!("cannot start the job scheduler: {e}"))?;
    loop {
        tokio::select! {
            () = wake.notified() => {}
            () = stop.cancelled() => break,
        }
        match engine.scheduler_pass().await {
            Ok(Some(r)) if r.fired > 0 || r.missed > 0 => {
                tracing::debug!(fired = r.fired, skipped = r.skipped, missed = r.missed, "scheduler pass");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(task = "scheduler", error = %e, "pass failed; retrying next tick"),
        }
    }
    cron.shutdown().await.map_err(|e| format!("cannot stop the job scheduler: {e}"))
}
