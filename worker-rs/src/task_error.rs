//! `TaskError`: how a handler says an attempt failed and whether it may be retried.

use braid_proto::v1 as pb;
use serde_json::Value;
use std::fmt;

/// A failed attempt, as reported to the server in `TaskResult.error`.
///
/// It does not implement `std::error::Error`, so that every `std::error::Error` can convert into
/// it with `?` (as a retryable error whose type is the error's Rust type name).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskError {
    message: String,
    kind: String,
    retryable: bool,
    details: Option<Value>,
}

impl TaskError {
    /// A failure the server may retry (if attempts remain), of type `"error"`.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self { message: message.into(), kind: "error".to_owned(), retryable: true, details: None }
    }

    /// A failure that ends the task at once, whatever attempts remain, of type `"error"`.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self { retryable: false, ..Self::retryable(message) }
    }

    /// Sets the short machine-readable kind, e.g. `"timeout"` or `"bad_input"`.
    #[must_use]
    pub fn with_type(mut self, kind: impl Into<String>) -> Self {
        self.kind = kind.into();
        self
    }

    /// Attaches a JSON document kept with the error (`TaskError.details_json`).
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The short machine-readable kind.
    pub fn error_type(&self) -> &str {
        &self.kind
    }

    /// Whether the server may retry the task.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The attached details, if any.
    pub fn details(&self) -> Option<&Value> {
        self.details.as_ref()
    }

    pub(crate) fn to_proto(&self) -> pb::TaskError {
        pb::TaskError {
            message: self.message.clone(),
            r#type: self.kind.clone(),
            retryable: self.retryable,
            details_json: self.details.as_ref().map(Value::to_string).unwrap_or_default(),
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let retry = if self.retryable { "retryable" } else { "fatal" };
        write!(f, "{} ({}, {retry})", self.message, self.kind)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for TaskError {
    /// A retryable error whose message is the error and its sources, and whose type is the Rust
    /// type name of the error.
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::retryable(message).with_type(std::any::type_name::<E>())
    }
}

/// Turns any `Result<T, E: Display>` (for example `anyhow::Result`) into a `Result<T, TaskError>`.
pub trait ResultExt<T> {
    /// Maps the error to a retryable [`TaskError`].
    fn retryable(self) -> Result<T, TaskError>;
    /// Maps the error to a fatal (not retried) [`TaskError`].
    fn fatal(self) -> Result<T, TaskError>;
}

impl<T, E: fmt::Display> ResultExt<T> for Result<T, E> {
    fn retryable(self) -> Result<T, TaskError> {
        self.map_err(|e| TaskError::retryable(e.to_string()))
    }

    fn fatal(self) -> Result<T, TaskError> {
        self.map_err(|e| TaskError::fatal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_and_proto() {
        let e = TaskError::fatal("no").with_type("bad_input").with_details(serde_json::json!({"k": 1}));
        assert!(!e.is_retryable());
        let p = e.to_proto();
        assert_eq!((p.message.as_str(), p.r#type.as_str(), p.retryable), ("no", "bad_input", false));
        assert_eq!(p.details_json, r#"{"k":1}"#);
        assert_eq!(TaskError::retryable("x").to_proto().details_json, "");
    }

    #[test]
    fn std_errors_convert_retryable() {
        fn parse() -> Result<u32, TaskError> {
            Ok("nope".parse::<u32>()?)
        }
        let e = parse().expect_err("fails");
        assert!(e.is_retryable());
        assert_eq!(e.error_type(), "core::num::error::ParseIntError");
        let e = Err::<(), _>("plain text").fatal().expect_err("fails");
        assert_eq!((e.message(), e.is_retryable()), ("plain text", false));
    }
}
