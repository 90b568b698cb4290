//! The HTTP port: `/healthz`, `/metrics` (Prometheus text), the live feed (`sse`), the dashboard's JSON API (`api`), sign-in (`auth`) and the dashboard itself (`dashboard`).

use crate::api::auth::AuthMode;
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
/// feeds need a token when `auth` is required; `/`, `/ui/…`, `/healthz` and `/metrics` do not.
pub fn router(metrics: Metrics, engine: Engine, auth: AuthMode, stop: CancellationToken) -> Router {
    let checked = auth::HttpAuth { engine: engine.clone(), mode: auth };
    let guarded = sse::routes(engine.clone(), stop)
        .merge(api::routes(engine))
        .route_layer(axum::middleware::from_fn_with_state(checked.clone(), auth::require));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(move || {
                let body = metrics.render();
                async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body) }
            }),
        )
        .merge(guarded)
        .merge(auth::routes(checked))
        .merge(dashboard::routes())
}
