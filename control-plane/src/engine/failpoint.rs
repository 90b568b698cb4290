//! Test-only failpoint for crash drills: `BRAID_FAILPOINT=crash-after-commit:N` aborts on the Nth publish after a commit.
//!
//! Unset (always, outside drills) it costs one atomic load per publish. `braid drill
//! control-plane-crash` sets it on a control plane it starts, to crash exactly between a
//! PostgreSQL commit and the Redis publish that follows it; see docs/runbook.md.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

/// The environment variable that arms the failpoint.
pub const VAR: &str = "BRAID_FAILPOINT";

static CRASH_AFTER: OnceLock<Option<u64>> = OnceLock::new();
static PUBLISHES: AtomicU64 = AtomicU64::new(0);

fn armed() -> Option<u64> {
    *CRASH_AFTER.get_or_init(|| {
        let value = std::env::var(VAR).ok()?;
        let n = value.strip_prefix("crash-after-commit:").and_then(|n| n.parse::<u64>().ok()).filter(|n| *n > 0);
        match n {
            Some(n) => tracing::warn!("{VAR}={value}: this process aborts on publish {n} after a commit (drills only)"),
            None => tracing::warn!("{VAR}={value:?} is not crash-after-commit:N (N >= 1); ignored"),
        }
        n
    })
}

/// Called after a commit, before its tasks are handed to the queue: aborts the process on the Nth call.
pub(crate) fn after_commit(items: &[(String, Uuid)]) {
    let Some(n) = armed() else { return };
    if PUBLISHES.fetch_add(1, Ordering::SeqCst) + 1 == n {
        let ids: Vec<String> = items.iter().map(|(_, id)| id.to_string()).collect();
        eprintln!(
            "failpoint crash-after-commit:{n}: aborting after the commit of tasks [{}], before publishing them",
            ids.join(", ")
        );
        std::process::abort();
    }
}
