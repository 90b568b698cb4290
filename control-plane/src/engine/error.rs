//! The engine's error enum: what a use case can refuse, independent of transport.

use crate::domain::validate::ValidationError;
use crate::objects::ObjectError;
use crate::store::StoreError;

/// Why a use case did not happen. Mapped to gRPC codes in `api::status`.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A workflow definition failed validation; every problem is listed.
    #[error("invalid workflow definition: {}", join(.0))]
    InvalidDefinition(Vec<ValidationError>),
    /// One request field is unacceptable.
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// No credential, or one that is unknown, expired or revoked.
    #[error("{0}")]
    Unauthenticated(String),
    /// The credential's role does not grant the call.
    #[error("{0}")]
    PermissionDenied(String),
    /// A tenant quota is used up; `retry_after` says when trying again may succeed.
    #[error("{message}")]
    ResourceExhausted { message: String, retry_after: Option<std::time::Duration> },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A large payload could not be read or written (missing or corrupt: DATA_LOSS; else UNAVAILABLE).
    #[error(transparent)]
    Objects(#[from] ObjectError),
}

impl EngineError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument { field: field.into(), reason: reason.into() }
    }

    /// The same error about part `prefix` of a larger request (`runs[3]`): field paths and
    /// messages are prefixed with it.
    #[must_use]
    pub fn within(self, prefix: &str) -> Self {
        match self {
            Self::InvalidArgument { field, reason } => {
                Self::InvalidArgument { field: format!("{prefix}.{field}"), reason }
            }
            Self::InvalidDefinition(errors) => Self::InvalidDefinition(
                errors.into_iter().map(|e| ValidationError { path: format!("{prefix}.{}", e.path), ..e }).collect(),
            ),
            Self::NotFound(m) => Self::NotFound(format!("{prefix}: {m}")),
            Self::AlreadyExists(m) => Self::AlreadyExists(format!("{prefix}: {m}")),
            Self::FailedPrecondition(m) => Self::FailedPrecondition(format!("{prefix}: {m}")),
            Self::Unauthenticated(m) => Self::Unauthenticated(m),
            Self::PermissionDenied(m) => Self::PermissionDenied(m),
            Self::ResourceExhausted { message, retry_after } => Self::ResourceExhausted { message, retry_after },
            Self::Store(e) => Self::Store(e),
            Self::Objects(e) => Self::Objects(e),
        }
    }
}

fn join(errors: &[ValidationError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}
