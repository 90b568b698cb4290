//! Braid's control plane: the gRPC API, the engine, storage, and the `braid` command line.

pub mod api;
pub mod app;
pub mod bench;
pub mod cli;
pub mod config;
pub mod domain;
pub mod drill;
pub mod engine;
pub mod http;
pub mod metrics;
pub mod objects;
pub mod queue;
pub mod sim;
pub mod store;
pub mod telemetry;

/// The version of this build, reported by `braid --version` and `Welcome.server_version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
