//! The HTTP port: `/healthz`, `/metrics` (Prometheus text), and an index of what is served.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder, IntGauge, Opts, Registry, TextEncoder};

mod retention;
pub use retention::RetentionMetrics;

/// The Prometheus registry the control plane exports on `/metrics`.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    retention: RetentionMetrics,
}

impl Metrics {
    /// A registry holding `braid_build_info` and `braid_retention_deleted_total`.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let info = IntGauge::with_opts(
            Opts::new("braid_build_info", "Build of this control plane; always 1.")
                .const_label("version", crate::VERSION),
        )?;
        info.set(1);
        registry.register(Box::new(info))?;
        let retention = RetentionMetrics::register(&registry)?;
        Ok(Self { registry, retention })
    }

    /// The counter the retention loop adds to.
    pub fn retention(&self) -> RetentionMetrics {
        self.retention.clone()
    }

    fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// The HTTP routes.
pub fn router(metrics: Metrics) -> Router {
    Router::new().route("/", get(index)).route("/healthz", get(|| async { "ok\n" })).route(
        "/metrics",
        get(move || {
            let body = metrics.render();
            async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body) }
        }),
    )
}

async fn index() -> impl IntoResponse {
    format!(
        "Braid control plane {}\n\n/healthz  liveness\n/metrics  Prometheus metrics\n\nThe gRPC API is on the gRPC port; try `braid workflow list` or grpcurl.\n",
        crate::VERSION
    )
}
