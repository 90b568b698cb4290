//! Run and task lifecycle states, their legal transitions, and what triggered a run.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A string that names no variant of the enum it was parsed as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct ParseStateError {
    /// What was being parsed: "run state", "task state" or "trigger source".
    pub kind: &'static str,
    /// The rejected input.
    pub value: String,
}

/// Implements `as_str`, `ALL`, `Display` and `FromStr` from one name table.
macro_rules! named_enum {
    ($ty:ident, $kind:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The lowercase name used in the database, the API and logs.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = ParseStateError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(ParseStateError { kind: $kind, value: s.to_owned() }),
                }
            }
        }
    };
}

pub(crate) use named_enum;

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Waiting for a concurrency slot.
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

named_enum!(RunState, "run state", {
    Queued => "queued",
    Running => "running",
    Succeeded => "succeeded",
    Failed => "failed",
    Cancelled => "cancelled",
});

impl RunState {
    /// Finished: nothing more happens unless an operator redrives a failed run.
    pub fn is_terminal(self) -> bool {
        match self {
            RunState::Queued | RunState::Running => false,
            RunState::Succeeded | RunState::Failed | RunState::Cancelled => true,
        }
    }

    /// Whether a run may move from `self` to `next`.
    pub fn can_transition_to(self, next: RunState) -> bool {
        use RunState::*;
        match self {
            Queued => matches!(next, Running | Cancelled),
            Running => matches!(next, Succeeded | Failed | Cancelled),
            // A redrive resumes a failed run.
            Failed => matches!(next, Running),
            Succeeded | Cancelled => false,
        }
    }
}

/// Where one task of one run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Some dependency has not succeeded yet.
    Pending,
    /// In the queue; `available_at` may lie in the future (backoff).
    Ready,
    /// A worker holds a lease on it.
    Leased,
    Succeeded,
    /// Attempts exhausted (or a non-retryable error): dead-lettered.
    Failed,
    Cancelled,
    /// An upstream task failed, so this one will not run.
    Skipped,
}

named_enum!(TaskState, "task state", {
    Pending => "pending",
    Ready => "ready",
    Leased => "leased",
    Succeeded => "succeeded",
    Failed => "failed",
    Cancelled => "cancelled",
    Skipped => "skipped",
});

impl TaskState {
    /// Finished: nothing more happens unless an operator redrives.
    pub fn is_terminal(self) -> bool {
        match self {
            TaskState::Pending | TaskState::Ready | TaskState::Leased => false,
            TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled | TaskState::Skipped => true,
        }
    }

    /// Whether a task may move from `self` to `next`.
    pub fn can_transition_to(self, next: TaskState) -> bool {
        use TaskState::*;
        match self {
            Pending => matches!(next, Ready | Skipped | Cancelled),
            Ready => matches!(next, Leased | Cancelled),
            // Back to ready on a retry or a lost lease.
            Leased => matches!(next, Ready | Succeeded | Failed | Cancelled),
            // A redrive gives a dead-lettered task a new attempt ...
            Failed => matches!(next, Ready),
            // ... and puts the tasks skipped because of it back to waiting.
            Skipped => matches!(next, Pending),
            Succeeded | Cancelled => false,
        }
    }
}

/// What created a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerSource {
    Api,
    /// A cron schedule fired.
    Schedule,
    Redrive,
}

named_enum!(TriggerSource, "trigger source", {
    Api => "api",
    Schedule => "schedule",
    Redrive => "redrive",
});

#[cfg(test)]
mod tests;
