//! Flow-control vocabulary: run priorities, concurrency policies, and a schedule's overlap and catch-up policies.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::state::{ParseStateError, named_enum};

/// How urgently a run's ready tasks are dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    High,
    #[default]
    Normal,
    Low,
}

named_enum!(Priority, "priority", {
    High => "high",
    Normal => "normal",
    Low => "low",
});

impl Priority {
    /// As stored: 0 high, 1 normal, 2 low (ascending is most urgent first).
    pub fn rank(self) -> i16 {
        match self {
            Priority::High => 0,
            Priority::Normal => 1,
            Priority::Low => 2,
        }
    }

    /// The priority stored as `rank`; anything unknown reads as normal.
    pub fn from_rank(rank: i16) -> Priority {
        match rank {
            0 => Priority::High,
            2 => Priority::Low,
            _ => Priority::Normal,
        }
    }
}

/// The fate of a run that does not fit under its workflow's concurrency limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConcurrencyPolicy {
    /// Wait (run state `queued`), first come first served.
    #[default]
    Queue,
    /// The new run is cancelled at once.
    CancelNewest,
    /// The oldest running run is cancelled to make room.
    CancelInProgress,
}

named_enum!(ConcurrencyPolicy, "concurrency policy", {
    Queue => "queue",
    CancelNewest => "cancel_newest",
    CancelInProgress => "cancel_in_progress",
});

impl ConcurrencyPolicy {
    pub fn is_default(&self) -> bool {
        *self == ConcurrencyPolicy::Queue
    }
}

/// What a schedule does with a tick while its previous run is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverlapPolicy {
    /// The tick is skipped.
    #[default]
    Skip,
    /// One run waits (queued) for the previous one to end; further ticks are skipped.
    BufferOne,
    /// Runs overlap.
    AllowAll,
    /// The previous run is cancelled and the tick's run starts.
    CancelOther,
}

named_enum!(OverlapPolicy, "overlap policy", {
    Skip => "skip",
    BufferOne => "buffer_one",
    AllowAll => "allow_all",
    CancelOther => "cancel_other",
});

/// Which missed ticks (within the catch-up window) are fired when the scheduler comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchupPolicy {
    /// Every missed tick, oldest first.
    #[default]
    All,
    /// Only the most recent missed tick.
    Latest,
}

named_enum!(CatchupPolicy, "catch-up policy", {
    All => "all",
    Latest => "latest",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>().unwrap(), *p);
            assert_eq!(Priority::from_rank(p.rank()), *p);
        }
        for p in ConcurrencyPolicy::ALL {
            assert_eq!(p.as_str().parse::<ConcurrencyPolicy>().unwrap(), *p);
        }
        for p in OverlapPolicy::ALL {
            assert_eq!(p.as_str().parse::<OverlapPolicy>().unwrap(), *p);
        }
        for p in CatchupPolicy::ALL {
            assert_eq!(p.as_str().parse::<CatchupPolicy>().unwrap(), *p);
        }
        assert!("urgent".parse::<Priority>().is_err());
        assert!(Priority::High < Priority::Normal && Priority::Normal < Priority::Low);
    }
}
