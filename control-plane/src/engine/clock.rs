//! The one seam for "now" outside SQL: a clock the engine is given, real or virtual.

use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Where the engine reads the current instant. Lease and backoff instants are
/// decided by the database clock inside SQL; this clock stamps everything else.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;
