//! Virtual time: a clock the simulator moves by hand, so a simulated hour takes no real time.

use crate::engine::Clock;
use chrono::{DateTime, TimeZone, Utc};
use std::sync::{Arc, Mutex};

/// Where every simulation starts: a fixed instant, so logs do not depend on the day they ran.
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap_or_default()
}

/// A clock that only moves when told to.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl VirtualClock {
    pub fn starting_at(t: DateTime<Utc>) -> Self {
        Self { now: Arc::new(Mutex::new(t)) }
    }

    /// Moves to `t`; time never goes back, so an earlier `t` leaves the clock where it is.
    pub fn advance_to(&self, t: DateTime<Utc>) {
        let mut now = self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if t > *now {
            *now = t;
        }
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
