//! The HTTP port: `/healthz`, `/metrics` (Prometheus text), the live feed (`sse`), the dashboard's JSON API (`api`), sign-in (`auth`) and the dashboard itself (`dashboard`).

use crate::api::auth::Access;
use crate::engine::Engine;
use axum::Router;
use axum::http::header;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

pub mod api;
pub mod auth;
pub mod dashboard;
pub mod error;
pub mod sse;
pub use crate::metrics::Metrics;

/// Every route of the HTTP port; open live feeds end when `stop` is cancelled. The API and the
/// feeds need a token when auth is required (and `/metrics` too when `access` says so); `/`,
/// `/ui/…` and `/healthz` never do.
pub fn router(metrics: Metrics, engine: Engine, access: Access, stop: CancellationToken) -> Router {
    let checked = auth::HttpAuth { engine: engine.clone(), mode: access.mode };
    let metrics_route = Router::new().route(
        "/metrics",
        get(move || {
            let body = metrics.render();
            async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body) }
        }),
    );
    let mut guarded = sse::routes(engine.clone(), stop).merge(api::routes(engine));
    let mut open = Router::new().route("/healthz", get(|| async { "ok\n" }));
    if access.metrics_need_token {
        guarded = guarded.merge(metrics_route);
    } else {
        open = open.merge(metrics_route);
    }
    let guarded = guarded.route_layer(axum::middleware::from_fn_with_state(checked.clone(), auth::require));
    open.merge(guarded).merge(auth::routes(checked)).merge(dashboard::routes())
}
