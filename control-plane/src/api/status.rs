//! The one place where engine errors become gRPC statuses.

use crate::engine::EngineError;
use crate::objects::ObjectError;
use crate::store::StoreError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

impl From<EngineError> for Status {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::InvalidDefinition(errors) => {
                let lines: Vec<String> = errors.iter().map(|e| format!("  {}: {}", e.path, e.reason)).collect();
                let message = format!(
                    "invalid workflow definition ({} problem{}):\n{}",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" },
                    lines.join("\n")
                );
                let violations: Vec<FieldViolation> =
                    errors.into_iter().map(|e| FieldViolation::new(e.path, e.reason)).collect();
                Status::with_error_details(Code::InvalidArgument, message, ErrorDetails::with_bad_request(violations))
            }
            EngineError::InvalidArgument { field, reason } => Status::with_error_details(
                Code::InvalidArgument,
                format!("{field}: {reason}"),
                ErrorDetails::with_bad_request_violation(field, reason),
            ),
            EngineError::NotFound(m) => Status::not_found(m),
            EngineError::AlreadyExists(m) => Status::already_exists(m),
            EngineError::FailedPrecondition(m) => Status::failed_precondition(m),
            EngineError::Unauthenticated(m) => Status::unauthenticated(m),
            EngineError::PermissionDenied(m) => Status::permission_denied(m),
            EngineError::ResourceExhausted { message, retry_after } => match retry_after {
                Some(after) => Status::with_error_details(
                    Code::ResourceExhausted,
                    message,
                    ErrorDetails::with_retry_info(Some(after)),
                ),
                None => Status::resource_exhausted(message),
            },
            EngineError::Objects(o) if o.is_data_loss() => {
                tracing::error!(error = %o, "a stored payload is missing or corrupt");
                Status::data_loss(o.to_string())
            }
            EngineError::Objects(o) => match o {
                ObjectError::Config(_) => {
                    tracing::error!(error = %o, "object store misconfigured");
                    Status::internal(o.to_string())
                }
                _ => Status::unavailable(o.to_string()),
            },
            EngineError::Store(s) => match s {
                StoreError::Unavailable(m) => Status::unavailable(m),
                StoreError::Conflict(m) => Status::aborted(format!("concurrent update, retry: {m}")),
                StoreError::SchemaBehind(_) => Status::failed_precondition(s.to_string()),
                StoreError::Db(_) | StoreError::Corrupt(_) => {
                    tracing::error!(error = %s, "internal storage error");
                    Status::internal("internal storage error (see the control plane's log)")
                }
            },
        }
    }
}
