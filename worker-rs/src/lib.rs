//! Braid's Rust reference worker SDK. The worker stream (leases, heartbeats, results, drain)
//! is specified in `proto/braid/v1/worker.proto` and implemented with the execution issue;
//! until then this crate only re-exports the generated protocol types.

/// The generated `braid.v1` messages and the `WorkerService` client.
pub use braid_proto::v1 as proto;
