//! The HTTP port: `/healthz`, `/metrics` (Prometheus text), the live feed (`sse`), and an index of what is served.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

pub mod sse;
pub use crate::metrics::Metrics;

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
        "Braid control plane {}\n\n/healthz  liveness\n/metrics  Prometheus metrics\n/v1/runs/ID/events  a run's events (Server-Sent Events)\n/v1/events  every run's events (Server-Sent Events, ?workflow=NAME)\n\nThe gRPC API is on the gRPC port; try `braid workflow list` or grpcurl.\n",
        crate::VERSION
    )
}
