//! `WorkerError`: why a worker could not be built or stopped running.

use std::io;

/// Why a worker could not be built, or why [`crate::Worker::run`] returned an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// `build()` was called without any `task(...)`.
    #[error("no task handlers registered: add at least one with WorkerBuilder::task")]
    NoTasks,
    /// The same task type was registered twice.
    #[error("task type {0:?} is registered twice")]
    DuplicateTaskType(String),
    /// A task type the server would refuse: 1 to 64 ASCII letters, digits, `_`, `.` or `-`,
    /// starting with a letter or digit.
    #[error(
        "invalid task type {0:?}: use 1 to 64 ASCII letters, digits, '_', '.' or '-', starting with a letter or digit"
    )]
    InvalidTaskType(String),
    /// `slots(0)`.
    #[error("slots must be at least 1")]
    ZeroSlots,
    /// The API token cannot be sent as a header value.
    #[error("the API token has characters a header cannot carry")]
    InvalidToken,
    /// The endpoint is not a valid URI.
    #[error("invalid endpoint {endpoint:?}: {source}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why tonic refused it.
        #[source]
        source: tonic::transport::Error,
    },
    /// TLS options were set but the endpoint is not `https://` (TLS is used only with `https://`).
    #[error("TLS options are set but the endpoint {endpoint:?} is not https://")]
    TlsWithoutHttps {
        /// The endpoint as given.
        endpoint: String,
    },
    /// An `https://` endpoint without a CA certificate ([`crate::WorkerBuilder::tls_ca_cert`]).
    #[error("the endpoint {endpoint:?} is https:// and needs a CA certificate: WorkerBuilder::tls_ca_cert")]
    HttpsWithoutCa {
        /// The endpoint as given.
        endpoint: String,
    },
    /// A PEM given to the TLS options holds no certificate or no key.
    #[error("invalid TLS {what}: {reason}")]
    InvalidPem {
        /// Which PEM: `CA certificate`, `client certificate` or `client key`.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// tonic refused the TLS configuration.
    #[error("cannot configure TLS for {endpoint:?}: {source}")]
    Tls {
        /// The endpoint as given.
        endpoint: String,
        /// Why tonic refused it.
        #[source]
        source: tonic::transport::Error,
    },
    /// The server refused the stream with a status that retrying cannot fix
    /// (`UNAUTHENTICATED`, `PERMISSION_DENIED`, `INVALID_ARGUMENT`).
    #[error("the server refused the worker: {0}")]
    Refused(Box<tonic::Status>),
    /// The metrics address given to `metrics_listen` cannot be bound.
    #[error("cannot listen on {addr} for metrics: {source}")]
    MetricsListen {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why binding failed.
        #[source]
        source: io::Error,
    },
    /// A signal handler could not be installed by [`crate::Worker::run`].
    #[error("cannot listen for shutdown signals: {0}")]
    Signal(#[source] io::Error),
}
