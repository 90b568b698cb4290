//! The HTTP port: `/healthz`, `/metrics` (Prometheus text), the live feed (`sse`), the dashboard's JSON API (`api`) and the dashboard itself (`dashboard`).

use crate::domain::records::Tenant;
use crate::engine::Engine;
use axum::Router;
use axum::http::{HeaderMap, header};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

pub mod api;
pub mod dashboard;
pub mod error;
pub mod sse;
pub use crate::metrics::Metrics;

/// Every route of the HTTP port; open live feeds end when `stop` is cancelled.
pub fn router(metrics: Metrics, engine: Engine, stop: CancellationToken) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(move || {
                let body = metrics.render();
                async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body) }
            }),
        )
        .merge(sse::routes(engine.clone(), stop))
        .merge(api::routes(engine))
        .merge(dashboard::routes())
}

/// The tenant an HTTP request acts for. Until API tokens exist (see the security issue),
/// every request acts for the default tenant, as in `api::tenant_of`.
pub(crate) fn tenant_of(_headers: &HeaderMap) -> Tenant {
    Tenant::default_tenant()
}
