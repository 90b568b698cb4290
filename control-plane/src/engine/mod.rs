//! The use cases: authoring, triggering and reading runs. Owns transactions and the rules.

pub mod authoring;
pub mod clock;
pub mod error;
pub mod page;
pub mod runs;
pub mod trigger;

pub use clock::{Clock, SharedClock, SystemClock};
pub use error::EngineError;

use crate::store::Store;

/// The engine: the rules of Braid over a store and a clock, shared by every API.
#[derive(Debug, Clone)]
pub struct Engine {
    store: Store,
    clock: SharedClock,
}

impl Engine {
    pub fn new(store: Store, clock: SharedClock) -> Self {
        Self { store, clock }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The clock's instant at the precision every backend keeps (PostgreSQL: microseconds),
    /// so that what the engine returns equals what it reads back later.
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        use chrono::SubsecRound;
        self.clock.now().trunc_subsecs(6)
    }
}
