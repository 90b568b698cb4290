//! `ExecutorError`: why an executor could not be built from its settings.

use std::path::PathBuf;

/// Why [`HttpExecutorBuilder::build`](crate::HttpExecutorBuilder::build) or
/// [`ProcessExecutorBuilder::build`](crate::ProcessExecutorBuilder::build) refused its settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecutorError {
    /// The URL does not parse, or is not `http://` or `https://`.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A header name or value that HTTP cannot carry.
    #[error("invalid header {name:?}: {reason}")]
    InvalidHeader {
        /// The header's name.
        name: String,
        /// What is wrong with it (the value is not repeated: it may be a secret).
        reason: String,
    },
    /// The CA certificate given for `https://` is not PEM.
    #[error("invalid CA certificate: {0}")]
    InvalidCaCert(String),
    /// The HTTP client could not be made.
    #[error("cannot make the HTTP client: {0}")]
    Client(String),
    /// The command has no program.
    #[error("the command is empty: give at least the program to run")]
    EmptyCommand,
    /// The working directory is not a directory.
    #[error("working directory {}: not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// A zero timeout or output bound.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// Exit code 0 listed as retryable (0 is success).
    #[error("exit code 0 means success and cannot be retryable")]
    RetryableZero,
}
