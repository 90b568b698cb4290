//! The live feed over HTTP: `GET /v1/runs/{id}/events` and `GET /v1/events` as Server-Sent Events.

use super::error::HttpError;
use crate::domain::auth::Principal;
use crate::domain::records::RunEvent;
use crate::engine::feed::FeedStart;
use crate::engine::runs::parse_run_id;
use crate::engine::{Engine, EngineError};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Extension, Router};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often an idle feed sends a comment, so proxies keep the connection.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
struct Feed {
    engine: Engine,
    /// Cancelled when the server stops: open feeds end so shutdown does not wait on them.
    stop: CancellationToken,
}

/// The feed routes; every open feed ends when `stop` is cancelled.
pub fn routes(engine: Engine, stop: CancellationToken) -> Router {
    Router::new()
        .route("/v1/runs/{id}/events", get(run_feed))
        .route("/v1/events", get(tenant_feed))
        .with_state(Feed { engine, stop })
}

#[derive(Debug, Deserialize)]
struct FeedQuery {
    after: Option<String>,
    workflow: Option<String>,
}

/// Where to resume: the `Last-Event-ID` header (what a reconnecting EventSource sends),
/// else `?after=`, else `None`.
fn resume_point(headers: &HeaderMap, after: Option<&str>) -> Result<Option<u64>, HttpError> {
    let header = headers.get("last-event-id").map(|v| (v.to_str().unwrap_or("?"), "Last-Event-ID"));
    let Some((text, what)) = header.or(after.map(|a| (a, "after"))) else { return Ok(None) };
    text.trim()
        .parse()
        .map(Some)
        .map_err(|_| HttpError::bad(what, format!("{text:?} is not an event id (a non-negative integer)")))
}

pub(super) fn event_json(e: &RunEvent) -> Value {
    json!({
        "run_id": e.run_id.to_string(),
        "sequence": e.sequence,
        "kind": e.kind,
        "task_name": e.task_name,
        "attempt": e.attempt,
        "at": e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "detail": serde_json::from_str::<Value>(&e.detail).unwrap_or_else(|_| Value::String(e.detail.clone())),
    })
}

fn sse_event(id: u64, e: &RunEvent) -> Event {
    Event::default().id(id.to_string()).event(&e.kind).data(event_json(e).to_string())
}

/// Ends the feed on shutdown or on a store error (logged; the client reconnects and resumes).
fn served(
    events: impl Stream<Item = Result<Event, EngineError>> + Send + 'static,
    stop: CancellationToken,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + Send + 'static> {
    let events = events
        .take_while(|e| {
            if let Err(err) = e {
                tracing::warn!(error = %err, "live feed ended on an error");
            }
            std::future::ready(e.is_ok())
        })
        .filter_map(|e| std::future::ready(e.ok().map(Ok)))
        .take_until(stop.cancelled_owned());
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

/// `GET /v1/runs/{id}/events`: the run's events after the resume sequence, live, ending
/// after the run's last event once it is terminal.
async fn run_feed(
    State(feed): State<Feed>,
    Path(id): Path<String>,
    Query(q): Query<FeedQuery>,
    headers: HeaderMap,
    Extension(caller): Extension<Principal>,
) -> Result<impl IntoResponse, HttpError> {
    let tenant = caller.tenant;
    let run_id = parse_run_id("id", &id)?;
    let after = resume_point(&headers, q.after.as_deref())?.unwrap_or(0);
    let events = feed.engine.watch_run(&tenant, run_id, after).await?;
    Ok(served(events.map(|e| e.map(|e| sse_event(e.sequence, &e))), feed.stop))
}

/// `GET /v1/events[?workflow=NAME]`: every event of the tenant's runs after the resume id
/// (by default, from now on), in global id order, live.
async fn tenant_feed(
    State(feed): State<Feed>,
    Query(q): Query<FeedQuery>,
    headers: HeaderMap,
    Extension(caller): Extension<Principal>,
) -> Result<impl IntoResponse, HttpError> {
    let tenant = caller.tenant;
    let start = resume_point(&headers, q.after.as_deref())?.map_or(FeedStart::Now, FeedStart::After);
    let workflow = q.workflow.filter(|w| !w.is_empty());
    let events = feed.engine.watch_events(&tenant, workflow, start).await?;
    Ok(served(events.map(|e| e.map(|e| sse_event(e.id, &e.event))), feed.stop))
}
