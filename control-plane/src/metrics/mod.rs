//! Every Prometheus metric of the control plane: one registry, its families by area, and the `/metrics` text.
//!
//! The families are defined here only; the engine, the gRPC layer and the collector record
//! through the handles below. Label values are bounded (workflow names, task types, outcomes,
//! gRPC service/method/code): never run or task ids.

mod api;
mod engine;
mod retention;
mod workers;

pub use api::GrpcMetrics;
pub use engine::{EngineMetrics, LATENCY_BUCKETS};
pub use retention::RetentionMetrics;
pub use workers::{WorkerMetrics, WorkerSlots};

use prometheus::{Encoder, IntGauge, Opts, Registry, TextEncoder};

/// The registry a control plane exports on `/metrics`, with a handle on each area's families.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    engine: EngineMetrics,
    grpc: GrpcMetrics,
    workers: WorkerMetrics,
    retention: RetentionMetrics,
}

impl Metrics {
    /// A fresh registry holding every `braid_*` family (and `braid_build_info` set to 1).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let info = IntGauge::with_opts(
            Opts::new("braid_build_info", "Build of this control plane; always 1.")
                .const_label("version", crate::VERSION),
        )?;
        info.set(1);
        registry.register(Box::new(info))?;
        Ok(Self {
            engine: EngineMetrics::register(&registry)?,
            grpc: GrpcMetrics::register(&registry)?,
            workers: WorkerMetrics::register(&registry)?,
            retention: RetentionMetrics::register(&registry)?,
            registry,
        })
    }

    /// Runs, tasks, leases, queues, dead letters, reconciler and cron.
    pub fn engine(&self) -> &EngineMetrics {
        &self.engine
    }

    /// gRPC requests and their latency (recorded by [`crate::api::layer::GrpcMetricsLayer`]).
    pub fn grpc(&self) -> &GrpcMetrics {
        &self.grpc
    }

    /// Worker streams held by this control plane.
    pub fn workers(&self) -> &WorkerMetrics {
        &self.workers
    }

    /// The counter the retention loop adds to.
    pub fn retention(&self) -> RetentionMetrics {
        self.retention.clone()
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
