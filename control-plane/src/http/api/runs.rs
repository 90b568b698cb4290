//! Runs on the dashboard API: list with filters, detail with blockers, event log, JSON downloads, cancel, re-run, redrive.

use super::json::{Blob, RunJson, TaskJson, time};
use super::{given, instant, page_size, uuid};
use crate::domain::auth::Principal;
use crate::domain::records::{RunDetail, RunFilter};
use crate::domain::state::{RunState, TriggerSource};
use crate::engine::Engine;
use crate::http::error::HttpError;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    workflow: Option<String>,
    state: Option<String>,
    source: Option<String>,
    key: Option<String>,
    id: Option<String>,
    after: Option<String>,
    before: Option<String>,
    page_size: Option<String>,
    page_token: Option<String>,
}

fn run_filter(q: ListQuery) -> Result<RunFilter, HttpError> {
    let states = given(q.state)
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.parse::<RunState>().map_err(|e| HttpError::bad("state", e.to_string())))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    Ok(RunFilter {
        workflow_name: given(q.workflow),
        states,
        created_after: instant("after", q.after)?,
        created_before: instant("before", q.before)?,
        schedule_id: None,
        trigger_source: given(q.source)
            .map(|s| s.parse::<TriggerSource>().map_err(|e| HttpError::bad("source", e.to_string())))
            .transpose()?,
        idempotency_key: given(q.key),
        run_id: given(q.id).map(|id| uuid("id", "run", &id)).transpose()?,
    })
}

/// `GET /api/v1/workflows`: every workflow with its latest version.
pub async fn workflows(
    State(engine): State<Engine>,
    Extension(caller): Extension<Principal>,
) -> Result<Json<Value>, HttpError> {
    let page = engine.list_workflows(&caller.tenant, 1000, "").await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|w| {
            json!({"name": w.name, "latest_version": w.latest_version, "description": w.description,
                   "task_count": w.task_count, "updated_at": time(w.updated_at)})
        })
        .collect();
    Ok(Json(json!({"workflows": items})))
}

/// `GET /api/v1/runs`: runs newest first, filtered, with task counts.
pub async fn list(
    State(engine): State<Engine>,
    Extension(caller): Extension<Principal>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, HttpError> {
    let size = page_size(q.page_size.clone())?;
    let token = q.page_token.clone().unwrap_or_default();
    let filter = run_filter(q)?;
    let page = engine.list_runs_with_counts(&caller.tenant, &filter, size, &token).await?;
    let runs: Vec<RunJson> = page.items.iter().map(|(r, c)| RunJson::new(r, Some(c))).collect();
    Ok(Json(json!({"runs": runs, "next_page_token": page.next.unwrap_or_default()})))
}

/// `GET /api/v1/runs/{id}`: the run, its tasks with attempts, and why each waiting task waits.
pub async fn detail(
    State(engine): State<Engine>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, HttpError> {
    let id = uuid("id", "run", &id)?;
    let x = engine.inspect_run(&caller.tenant, id).await?;
    let run = &x.detail.run;
    let mut run_json = serde_json::to_value(RunJson::new(run, None)).unwrap_or_default();
    run_json["input"] = json!(Blob::of(Some(&run.input), run.input_ref.as_ref(), format!("/api/v1/runs/{id}/input")));
    run_json["output"] =
        json!(Blob::of(run.output.as_deref(), run.output_ref.as_ref(), format!("/api/v1/runs/{id}/output")));
    let tasks: Vec<TaskJson> =
        x.detail.tasks.iter().zip(&x.blockers).map(|(t, b)| TaskJson::new(t, b.as_ref(), &x.worker_names)).collect();
    Ok(Json(json!({"run": run_json, "tasks": tasks, "last_sequence": x.last_sequence})))
}

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    after: Option<String>,
    limit: Option<String>,
}

/// Most events one read of the log returns.
const MAX_EVENTS: u64 = 5000;

/// `GET /api/v1/runs/{id}/events`: the run's event log after `after`, oldest first.
pub async fn events(
    State(engine): State<Engine>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Value>, HttpError> {
    let id = uuid("id", "run", &id)?;
    let number = |field: &str, v: Option<String>| -> Result<Option<u64>, HttpError> {
        given(v).map(|t| t.parse().map_err(|_| HttpError::bad(field, format!("{t:?} is not a number")))).transpose()
    };
    let after = number("after", q.after)?.unwrap_or(0);
    let limit = number("limit", q.limit)?.unwrap_or(1000).clamp(1, MAX_EVENTS);
    let (events, run) = engine.run_events(&caller.tenant, id, after, limit).await?;
    let events: Vec<Value> = events.iter().map(crate::http::sse::event_json).collect();
    Ok(Json(json!({"events": events, "run_state": run.state.as_str()})))
}

/// A JSON document offered as a file.
fn download(body: String, filename: &str) -> Response {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// `GET /api/v1/runs/{id}/input`.
pub async fn run_input(
    State(engine): State<Engine>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    let run_id = uuid("id", "run", &id)?;
    let run = engine.get_run(&caller.tenant, run_id).await?.run;
    Ok(download(engine.run_input_text(&run).await?, &format!("run-{run_id}-input.json")))
}

/// `GET /api/v1/runs/{id}/output`.
pub async fn run_output(
    State(engine): State<Engine>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    let run_id = uuid("id", "run", &id)?;
    let detail = engine.get_run(&caller.tenant, run_id).await?;
    let output = engine
        .run_output_text(&detail)
        .await?
        .ok_or_else(|| HttpError::bad("id", format!("run {run_id} has no output (yet)")))?;
    Ok(download(output, &format!("run-{run_id}-output.json")))
}

/// The run and the position of its named task, or NOT_FOUND.
async fn run_task(engine: &Engine, caller: &Principal, id: &str, name: &str) -> Result<(RunDetail, usize), HttpError> {
    let run_id = uuid("id", "run", id)?;
    let detail = engine.get_run(&caller.tenant, run_id).await?;
    let at = detail.tasks.iter().position(|t| t.name == name).ok_or_else(|| {
        HttpError::Engine(crate::engine::EngineError::NotFound(format!("run {run_id} has no task {name:?}")))
    })?;
    Ok((detail, at))
}

/// The input the task's worker receives: the run's input and its dependencies' outputs.
async fn composed_input(engine: &Engine, caller: &Principal, id: &str, name: &str) -> Result<String, HttpError> {
    let (detail, at) = run_task(engine, caller, id, name).await?;
    Ok(engine.task_input_text(&detail, at).await?)
}

/// `GET /api/v1/runs/{id}/tasks/{name}`: the task's input as shown (pretty, cut, with its download).
pub async fn task_view(
    State(engine): State<Engine>,
    Extension(caller): Extension<Principal>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Json<Value>, HttpError> {
    let doc = composed_input(&engine, &caller, &id, &name).await?;
    let encoded = percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC);
    Ok(Json(json!({"input": Blob::new(&doc, format!("/api/v1/runs/{id}/tasks/{encoded}/input"))})))
}

/// `GET /api/v1/runs/{id}/tasks/{name}/input`: the input the task's worker receives, as a file.
pub async fn task_input_download(
    State(engine): State<Engine>,
    Extension(caller): Extension<Principal>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, HttpError> {
    let doc = composed_input(&engine, &caller, &id, &name).await?;
    Ok(download(doc, &format!("{name}-input.json")))
}

/// `GET /api/v1/runs/{id}/tasks/{name}/output`.
pub async fn task_output(
    State(engine): State<Engine>,
    Extension(caller): Extension<Principal>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, HttpError> {
    let (detail, at) = run_task(&engine, &caller, &id, &name).await?;
    let output = engine
        .task_output_text(&detail.tasks[at])
        .await?
        .ok_or_else(|| HttpError::bad("name", format!("task {name:?} has no output (yet)")))?;
    Ok(download(output, &format!("{name}-output.json")))
}

#[derive(Debug, Default, Deserialize)]
pub struct CancelBody {
    #[serde(default)]
    reason: String,
}

/// `POST /api/v1/runs/{id}/cancel`.
pub async fn cancel(
    State(engine): State<Engine>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
    body: Option<Json<CancelBody>>,
) -> Result<Json<Value>, HttpError> {
    let id = uuid("id", "run", &id)?;
    let reason = body.map(|b| b.0.reason).filter(|r| !r.trim().is_empty());
    let reason = reason.as_deref().unwrap_or("cancelled from the dashboard");
    let before = engine.get_run(&caller.tenant, id).await?.run.state;
    let out = engine.cancel_run(&caller.tenant, id, reason).await?;
    let state = out.run.run.state;
    Ok(Json(json!({"state": state.as_str(), "changed": state != before})))
}

/// `POST /api/v1/runs/{id}/rerun`: a new run of the same version with the same input.
pub async fn rerun(
    State(engine): State<Engine>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, HttpError> {
    let id = uuid("id", "run", &id)?;
    let new = engine.rerun(&caller.tenant, id).await?;
    Ok(Json(json!({"run_id": new.to_string()})))
}

/// `POST /api/v1/runs/{id}/redrive`: every dead letter of the run.
pub async fn redrive(
    State(engine): State<Engine>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, HttpError> {
    let id = uuid("id", "run", &id)?;
    let tasks = engine.redrive_run(&caller.tenant, id).await?;
    let ids: Vec<String> = tasks.iter().map(ToString::to_string).collect();
    Ok(Json(json!({"redriven": ids})))
}
