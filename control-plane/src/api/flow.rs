//! Wire forms of the flow-control enums (priority, concurrency, overlap and catch-up policies), both ways.

use crate::domain::flow::{CatchupPolicy, ConcurrencyPolicy, OverlapPolicy, Priority};
use crate::engine::EngineError;
use braid_proto::v1 as pb;

fn unknown(field: &str, value: i32) -> EngineError {
    EngineError::invalid(field, format!("unknown value {value}"))
}

pub fn priority(p: Priority) -> pb::Priority {
    match p {
        Priority::High => pb::Priority::High,
        Priority::Normal => pb::Priority::Normal,
        Priority::Low => pb::Priority::Low,
    }
}

/// UNSPECIFIED reads as normal.
pub fn priority_from_proto(field: &str, value: i32) -> Result<Priority, EngineError> {
    match pb::Priority::try_from(value).map_err(|_| unknown(field, value))? {
        pb::Priority::Unspecified | pb::Priority::Normal => Ok(Priority::Normal),
        pb::Priority::High => Ok(Priority::High),
        pb::Priority::Low => Ok(Priority::Low),
    }
}

pub fn concurrency_policy(p: ConcurrencyPolicy) -> pb::ConcurrencyPolicy {
    match p {
        ConcurrencyPolicy::Queue => pb::ConcurrencyPolicy::Queue,
        ConcurrencyPolicy::CancelNewest => pb::ConcurrencyPolicy::CancelNewest,
        ConcurrencyPolicy::CancelInProgress => pb::ConcurrencyPolicy::CancelInProgress,
    }
}

/// UNSPECIFIED reads as queue.
pub fn concurrency_policy_from_proto(field: &str, value: i32) -> Result<ConcurrencyPolicy, EngineError> {
    match pb::ConcurrencyPolicy::try_from(value).map_err(|_| unknown(field, value))? {
        pb::ConcurrencyPolicy::Unspecified | pb::ConcurrencyPolicy::Queue => Ok(ConcurrencyPolicy::Queue),
        pb::ConcurrencyPolicy::CancelNewest => Ok(ConcurrencyPolicy::CancelNewest),
        pb::ConcurrencyPolicy::CancelInProgress => Ok(ConcurrencyPolicy::CancelInProgress),
    }
}

pub fn overlap_policy(p: OverlapPolicy) -> pb::OverlapPolicy {
    match p {
        OverlapPolicy::Skip => pb::OverlapPolicy::Skip,
        OverlapPolicy::BufferOne => pb::OverlapPolicy::BufferOne,
        OverlapPolicy::AllowAll => pb::OverlapPolicy::AllowAll,
        OverlapPolicy::CancelOther => pb::OverlapPolicy::CancelOther,
    }
}

/// UNSPECIFIED reads as `unspecified` (the caller's default).
pub fn overlap_policy_from_proto(
    field: &str,
    value: i32,
    unspecified: OverlapPolicy,
) -> Result<OverlapPolicy, EngineError> {
    match pb::OverlapPolicy::try_from(value).map_err(|_| unknown(field, value))? {
        pb::OverlapPolicy::Unspecified => Ok(unspecified),
        pb::OverlapPolicy::Skip => Ok(OverlapPolicy::Skip),
        pb::OverlapPolicy::BufferOne => Ok(OverlapPolicy::BufferOne),
        pb::OverlapPolicy::AllowAll => Ok(OverlapPolicy::AllowAll),
        pb::OverlapPolicy::CancelOther => Ok(OverlapPolicy::CancelOther),
    }
}

pub fn catchup_policy(p: CatchupPolicy) -> pb::CatchupPolicy {
    match p {
        CatchupPolicy::All => pb::CatchupPolicy::All,
        CatchupPolicy::Latest => pb::CatchupPolicy::Latest,
    }
}

/// UNSPECIFIED reads as all.
pub fn catchup_policy_from_proto(field: &str, value: i32) -> Result<CatchupPolicy, EngineError> {
    match pb::CatchupPolicy::try_from(value).map_err(|_| unknown(field, value))? {
        pb::CatchupPolicy::Unspecified | pb::CatchupPolicy::All => Ok(CatchupPolicy::All),
        pb::CatchupPolicy::Latest => Ok(CatchupPolicy::Latest),
    }
}
