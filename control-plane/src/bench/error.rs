//! `BenchError`: why a bench could not run or finish (set-up, RPCs, workers, a stalled workload).

use crate::drill::DrillError;
use std::time::Duration;

/// Why a bench stopped. Figures are never errors: a slow system is reported, not refused.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Setup(#[from] DrillError),
    #[error("cannot reach {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    #[error("{call}: {code:?}: {message}")]
    Rpc { call: &'static str, code: tonic::Code, message: String },
    #[error(
        "the server does not implement RunService.TriggerRuns (UNIMPLEMENTED); pass --per-call to trigger one run per call"
    )]
    NoBulkTrigger,
    #[error("worker: {0}")]
    Worker(#[from] braid_worker::WorkerError),
    #[error("workers did not connect within {0:?}")]
    WorkersNotConnected(Duration),
    #[error("{phase}: no progress for {idle:?} ({done} of {total} completed, {rejected} results rejected)")]
    Stalled { phase: String, done: u64, total: u64, rejected: u64, idle: Duration },
    #[error("database: {0}")]
    Database(String),
    #[error("interrupted")]
    Interrupted,
}

impl From<sea_orm::DbErr> for BenchError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Database(e.to_string())
    }
}

impl BenchError {
    /// A failed call, named.
    pub fn rpc(call: &'static str, s: &tonic::Status) -> Self {
        if call == "TriggerRuns" && s.code() == tonic::Code::Unimplemented {
            return Self::NoBulkTrigger;
        }
        Self::Rpc { call, code: s.code(), message: s.message().to_owned() }
    }
}
