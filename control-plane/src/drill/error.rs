//! `DrillError`: why a drill could not run (set-up, processes, services); failed invariants are not errors.

/// Why a drill could not be carried out. A drill that ran and found a broken invariant is
/// not an error: it returns a report whose verdict is FAIL.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error("{0}")]
    Config(String),
    #[error("database: {0}")]
    Database(String),
    #[error("redis: {0}")]
    Redis(String),
    #[error("cannot start {what}: {reason}")]
    Spawn { what: String, reason: String },
    #[error("{what} did not become ready: {reason}")]
    NotReady { what: String, reason: String },
    #[error("{what}: {reason}")]
    Process { what: String, reason: String },
    #[error("API: {0}")]
    Api(String),
    #[error("{0} (the drill stopped before the fault was checked)")]
    Workload(String),
    #[error("interrupted")]
    Interrupted,
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

impl From<sea_orm::DbErr> for DrillError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Database(e.to_string())
    }
}

impl From<crate::store::StoreError> for DrillError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Database(e.to_string())
    }
}

impl From<tonic::Status> for DrillError {
    fn from(s: tonic::Status) -> Self {
        Self::Api(format!("{:?}: {}", s.code(), s.message()))
    }
}
