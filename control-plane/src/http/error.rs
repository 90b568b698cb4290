//! The HTTP port's one error type and its mapping to HTTP statuses and a JSON body `{"error": {"code", "message"}}`.

use crate::engine::EngineError;
use crate::store::StoreError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Why an HTTP request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A query parameter, path segment or body is unacceptable.
    #[error("{field}: {reason}")]
    BadRequest { field: String, reason: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl HttpError {
    pub fn bad(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::BadRequest { field: field.into(), reason: reason.into() }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            HttpError::BadRequest { .. } => (StatusCode::BAD_REQUEST, "invalid_argument"),
            HttpError::Engine(e) => match e {
                EngineError::InvalidDefinition(_) | EngineError::InvalidArgument { .. } => {
                    (StatusCode::BAD_REQUEST, "invalid_argument")
                }
                EngineError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
                EngineError::AlreadyExists(_) => (StatusCode::CONFLICT, "already_exists"),
                EngineError::FailedPrecondition(_) => (StatusCode::CONFLICT, "failed_precondition"),
                EngineError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
                EngineError::PermissionDenied(_) => (StatusCode::FORBIDDEN, "permission_denied"),
                EngineError::ResourceExhausted { retry_after, .. } => {
                    let body = json!({"error": {"code": "resource_exhausted", "message": self.to_string()}});
                    let secs = retry_after.map_or(1, |d| d.as_secs_f64().ceil().max(1.0) as u64).to_string();
                    return (StatusCode::TOO_MANY_REQUESTS, [(axum::http::header::RETRY_AFTER, secs)], Json(body))
                        .into_response();
                }
                EngineError::Objects(o) if o.is_data_loss() => {
                    tracing::error!(error = %o, "a stored payload is missing or corrupt");
                    let body = json!({"error": {"code": "data_loss", "message": o.to_string()}});
                    return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
                }
                EngineError::Objects(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
                EngineError::Store(s) => match s {
                    StoreError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
                    StoreError::Conflict(_) => (StatusCode::CONFLICT, "aborted"),
                    StoreError::SchemaBehind(_) => (StatusCode::SERVICE_UNAVAILABLE, "failed_precondition"),
                    StoreError::Db(_) | StoreError::Corrupt(_) => {
                        tracing::error!(error = %s, "internal storage error");
                        let body = json!({"error": {"code": "internal", "message": "internal storage error (see the control plane's log)"}});
                        return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
                    }
                },
            },
        };
        (status, Json(json!({"error": {"code": code, "message": self.to_string()}}))).into_response()
    }
}
