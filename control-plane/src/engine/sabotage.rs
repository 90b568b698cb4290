//! Deliberate breakage for the simulator's self-test: proof that its invariant checks can fail.
//!
//! Only `braid simulate --sabotage …` (and the tests of the simulator) set one; a server never
//! does. Each sabotage removes one guarantee, and the seed sweep must find a seed that shows it.

/// A guarantee the engine is told to drop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sabotage {
    /// Nothing dropped: the engine as it runs everywhere.
    #[default]
    None,
    /// Lease fencing off: a result from a lease that is no longer current is applied to the
    /// task's current attempt, as if it came from the worker holding the lease.
    UnfencedResults,
}

impl Sabotage {
    /// The name `braid simulate --sabotage` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::UnfencedResults => "fencing",
        }
    }
}

impl std::str::FromStr for Sabotage {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Self::None),
            "fencing" => Ok(Self::UnfencedResults),
            other => Err(format!("unknown sabotage {other:?}; expected none or fencing")),
        }
    }
}
