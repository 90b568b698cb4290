//! The five workloads, one file each; each returns its repetitions and adds its figures.

pub mod dag;
pub mod drain;
pub mod latency;
pub mod soak;
pub mod throughput;

use std::time::Instant;

/// Seconds from `a` to `b` (never zero, so that rates stay finite).
pub fn secs(a: Instant, b: Instant) -> f64 {
    b.saturating_duration_since(a).as_secs_f64().max(1e-9)
}

/// Bytes as MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
