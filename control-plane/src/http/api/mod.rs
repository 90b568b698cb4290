//! The dashboard's JSON API under `/api/v1`: thin handlers, one engine call each, engine records to `json` shapes.

use super::error::HttpError;
use crate::engine::Engine;
use axum::Router;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use uuid::Uuid;

mod dead_letters;
mod fleet;
pub mod json;
mod runs;
mod schedules;

/// The `/api/v1` routes.
pub fn routes(engine: Engine) -> Router {
    Router::new()
        .route("/api/v1/workflows", get(runs::workflows))
        .route("/api/v1/runs", get(runs::list))
        .route("/api/v1/runs/{id}", get(runs::detail))
        .route("/api/v1/runs/{id}/events", get(runs::events))
        .route("/api/v1/runs/{id}/input", get(runs::run_input))
        .route("/api/v1/runs/{id}/output", get(runs::run_output))
        .route("/api/v1/runs/{id}/tasks/{name}", get(runs::task_view))
        .route("/api/v1/runs/{id}/tasks/{name}/input", get(runs::task_input_download))
        .route("/api/v1/runs/{id}/tasks/{name}/output", get(runs::task_output))
        .route("/api/v1/runs/{id}/cancel", post(runs::cancel))
        .route("/api/v1/runs/{id}/rerun", post(runs::rerun))
        .route("/api/v1/runs/{id}/redrive", post(runs::redrive))
        .route("/api/v1/dead-letters", get(dead_letters::list))
        .route("/api/v1/dead-letters/groups", get(dead_letters::groups))
        .route("/api/v1/dead-letters/redrive", post(dead_letters::redrive))
        .route("/api/v1/workers", get(fleet::workers))
        .route("/api/v1/queues", get(fleet::queues))
        .route("/api/v1/schedules", get(schedules::list))
        .route("/api/v1/schedules/{id}/pause", post(schedules::pause))
        .route("/api/v1/schedules/{id}/resume", post(schedules::resume))
        .with_state(engine)
}

/// A query parameter that is absent or empty is None.
fn given(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn uuid(field: &str, what: &str, text: &str) -> Result<Uuid, HttpError> {
    Uuid::parse_str(text.trim()).map_err(|_| HttpError::bad(field, format!("{text:?} is not a {what} id (a UUID)")))
}

fn instant(field: &str, text: Option<String>) -> Result<Option<DateTime<Utc>>, HttpError> {
    given(text)
        .map(|t| {
            DateTime::parse_from_rfc3339(&t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| HttpError::bad(field, format!("{t:?} is not an RFC 3339 time: {e}")))
        })
        .transpose()
}

/// A page size given as text; absent means the engine's default.
fn page_size(text: Option<String>) -> Result<u32, HttpError> {
    given(text).map_or(Ok(0), |t| t.parse().map_err(|_| HttpError::bad("page_size", format!("{t:?} is not a count"))))
}
