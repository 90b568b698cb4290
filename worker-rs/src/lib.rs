//! Braid's Rust reference worker SDK: typed task handlers served over one `WorkerService.Connect` stream.
//!
//! A worker registers one async handler per task type, connects to a control plane, and runs the
//! tasks the server leases to it. The SDK does the protocol work: `Hello`, heartbeats at the
//! server's interval listing the leases it holds, results fenced by `(task_id, attempt, lease_id)`,
//! reconnection with jittered exponential backoff, local slot limits, cancellation, and a bounded
//! graceful drain.
//!
//! ```no_run
//! use braid_worker::{TaskContext, TaskError, Worker};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct ResizeInput { width: u32 }
//! #[derive(Deserialize)]
//! struct Fetched { url: String }
//! #[derive(Serialize)]
//! struct ResizeOutput { url: String, width: u32 }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let worker = Worker::builder()
//!     .endpoint("http://127.0.0.1:7400")
//!     .name("thumbnailer-1")
//!     .slots(8)
//!     .label("zone", "a")
//!     .task("resize", |input: ResizeInput, ctx: TaskContext| async move {
//!         let fetched: Fetched = ctx.deps("fetch")?;
//!         if ctx.is_cancelled() {
//!             return Err(TaskError::retryable("cancelled").with_type("cancelled"));
//!         }
//!         Ok::<_, TaskError>(ResizeOutput { url: fetched.url, width: input.width })
//!     })
//!     .build()?;
//! worker.run().await?; // until SIGINT/SIGTERM, then a graceful drain
//! # Ok(()) }
//! ```
//!
//! # Inputs and dependencies
//!
//! The server sends each task `{"input": <run input>, "deps": {"<dependency task name>": <its
//! output>, ...}}`. A handler's typed input is the **`input` part** (the run input), deserialized
//! with serde; the outputs of the task's dependencies are read from the context with
//! [`TaskContext::deps`] (typed) or [`TaskContext::dep_raw`] / [`TaskContext::deps_raw`] (JSON).
//! A missing `input` deserializes from `null`, so use `serde_json::Value` or
//! `serde::de::IgnoredAny` to accept anything. When the input does not deserialize, the handler is
//! not called and the attempt fails with a non-retryable error of type `bad_input`.
//!
//! # Errors
//!
//! A handler returns `Result<O, E>` where `O: Serialize` and `E: Into<TaskError>`. Build errors
//! with [`TaskError::retryable`] or [`TaskError::fatal`] (not retried), refine them with
//! [`TaskError::with_type`] and [`TaskError::with_details`]. Any `std::error::Error` converts into
//! a retryable `TaskError` (so `?` works on I/O or serde errors); for `anyhow::Error` or any other
//! `Display` error, use [`ResultExt::retryable`] / [`ResultExt::fatal`]. A panicking handler
//! fails its attempt with a retryable error of type `panic`.
//!
//! # Slots
//!
//! At most `slots` handlers run at once. The server never leases more than `slots` tasks to a
//! stream, but if it does, the extra tasks wait in a local FIFO queue for a free slot: they count
//! as held (they are listed in heartbeats) and their cancellation and deadline apply while they
//! wait; a task cancelled before it starts reports a retryable error without running (its
//! `details_json` is `{"started": false}`). The SDK never sends `Credits`.
//!
//! # Cancellation
//!
//! A handler's [`TaskContext::cancellation`] token is cancelled when the server sends
//! `CancelTask`, when a newer attempt of the same task is assigned, when the attempt's deadline
//! passes, when the lease may have expired, or when the drain deadline passes
//! ([`TaskContext::cancel_reason`] says which). A lease "may have expired" when no heartbeat was
//! handed to a live stream for a whole lease TTL: the stream broke (HTTP/2 keepalive detects a
//! silent dead connection within about 20 s) and no reconnection succeeded in time.
//! Cancellation is cooperative: the handler should return soon, and its result is still reported.
//!
//! Each handler runs inside a `tracing` span `task` with `task_id`, `attempt`, `task_type`,
//! `run_id` and `traceparent`.
//!
//! # Results
//!
//! Every result is sent with the attempt's `(task_id, attempt, lease_id)`, also on a new stream
//! after a reconnect (the server fences by lease, not by stream). A result the server rejects
//! (stale lease: `FAILED_PRECONDITION`; malformed: `INVALID_ARGUMENT`) is logged at `warn`/`error`
//! and never sent again. A result sent on a stream that broke before its `ResultAck` arrived is
//! sent again on the next stream.
//!
//! # Executors
//!
//! A task type can also be served by an [`Executor`] instead of an in-process handler:
//! [`WorkerBuilder::executor`] registers one, and the runtime runs it like a handler.
//! [`HttpExecutor`] POSTs `{"input", "deps"}` to a URL; [`ProcessExecutor`] runs a command with it
//! on stdin. Both map failures to retryable or fatal errors and stop on cancellation; the
//! `braid-worker` binary serves them from a config file (see `docs/executors.md`).
//!
//! # Shutdown
//!
//! [`Worker::run`] drains on SIGINT or SIGTERM (a second signal stops at once);
//! [`Worker::run_until`] drains when its future completes; [`WorkerHandle::shutdown`] does the same
//! from elsewhere. Draining sends `Drain`, keeps heartbeating, lets running tasks finish until the
//! drain timeout ([`WorkerBuilder::drain_timeout`], 30 s by default), then cancels them and waits
//! up to 5 s more for their results; it sends the results, waits (up to 5 s) for their acks,
//! half-closes the stream and returns.

mod backoff;
mod builder;
mod context;
mod error;
mod event;
mod executor;
mod handler;
mod metrics;
mod runtime;
mod stats;
mod task_error;
mod tls;
mod traces;
mod worker;

pub use builder::{DEFAULT_ENDPOINT, WorkerBuilder, default_name};
pub use context::{CancelReason, TaskContext};
pub use error::WorkerError;
pub use event::{TaskOutcome, TaskRef, WorkerEvent};
pub use executor::{
    DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_RETRYABLE_EXIT_CODES, Executor, ExecutorError, HttpExecutor, HttpExecutorBuilder,
    ProcessExecutor, ProcessExecutorBuilder, cancelled_error,
};
pub use stats::WorkerStats;
pub use task_error::{ResultExt, TaskError};
pub use tokio_util::sync::CancellationToken;
pub use traces::OTLP_ENDPOINT_ENV;
pub use worker::{Worker, WorkerHandle};

/// The generated `braid.v1` messages and the `WorkerService` client.
pub use braid_proto::v1 as proto;

/// The SDK's version, sent in `Hello.sdk_version`.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");
