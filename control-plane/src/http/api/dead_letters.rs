//! Dead letters on the dashboard API: groups by workflow, task and error type; a filtered list; redrive by ids or by filter.

use super::json::{ErrorJson, time};
use super::{given, page_size, uuid};
use crate::domain::auth::Principal;
use crate::engine::Engine;
use crate::http::error::HttpError;
use crate::store::dead_letters::DeadLetterFilter;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Default, Deserialize)]
pub struct FilterQuery {
    workflow: Option<String>,
    task: Option<String>,
    error_type: Option<String>,
    page_size: Option<String>,
    page_token: Option<String>,
}

fn filter(workflow: Option<String>, task: Option<String>, error_type: Option<String>) -> DeadLetterFilter {
    DeadLetterFilter {
        workflow_name: given(workflow),
        task_name: given(task),
        error_type: given(error_type),
        ..DeadLetterFilter::default()
    }
}

/// `GET /api/v1/dead-letters/groups`.
pub async fn groups(
    State(engine): State<Engine>,
    Extension(caller): Extension<Principal>,
    Query(q): Query<FilterQuery>,
) -> Result<Json<Value>, HttpError> {
    let groups = engine.dead_letter_groups(&caller.tenant, &filter(q.workflow, q.task, q.error_type)).await?;
    let total: u64 = groups.iter().map(|g| g.count).sum();
    let groups: Vec<Value> = groups
        .iter()
        .map(|g| {
            json!({"workflow": g.workflow_name, "task": g.task_name, "error_type": g.error_type, "count": g.count,
                   "latest_error": ErrorJson::from(&g.latest_error), "latest_at": time(g.latest_at),
                   "latest_run_id": g.latest_run_id.to_string()})
        })
        .collect();
    Ok(Json(json!({"groups": groups, "total": total})))
}

/// `GET /api/v1/dead-letters`: waiting dead letters, newest first.
pub async fn list(
    State(engine): State<Engine>,
    Extension(caller): Extension<Principal>,
    Query(q): Query<FilterQuery>,
) -> Result<Json<Value>, HttpError> {
    let size = page_size(q.page_size)?;
    let token = q.page_token.unwrap_or_default();
    let f = filter(q.workflow, q.task, q.error_type);
    let page = engine.list_dead_letters(&caller.tenant, &f, size, &token).await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|d| {
            json!({"id": d.id.to_string(), "task_id": d.task_id.to_string(), "run_id": d.run_id.to_string(),
                   "workflow": d.workflow_name, "version": d.workflow_version, "task": d.task_name,
                   "task_type": d.task_type, "error": ErrorJson::from(&d.error), "attempts": d.attempts,
                   "created_at": time(d.created_at)})
        })
        .collect();
    Ok(Json(json!({"dead_letters": items, "next_page_token": page.next.unwrap_or_default()})))
}

#[derive(Debug, Deserialize)]
pub struct FilterBody {
    workflow: Option<String>,
    task: Option<String>,
    error_type: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RedriveBody {
    #[serde(default)]
    ids: Vec<String>,
    filter: Option<FilterBody>,
}

/// `POST /api/v1/dead-letters/redrive` with `{"ids": […]}` or `{"filter": {…}}` (empty: all).
pub async fn redrive(
    State(engine): State<Engine>,
    Extension(caller): Extension<Principal>,
    Json(body): Json<RedriveBody>,
) -> Result<Json<Value>, HttpError> {
    let f = match (body.ids.is_empty(), body.filter) {
        (false, Some(_)) => return Err(HttpError::bad("ids", "give either ids or a filter, not both")),
        (true, None) => {
            return Err(HttpError::bad("filter", "give ids, or a filter (an empty filter redrives every dead letter)"));
        }
        (false, None) => DeadLetterFilter::default(),
        (true, Some(f)) => filter(f.workflow, f.task, f.error_type),
    };
    let ids = body
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| uuid(&format!("ids[{i}]"), "dead letter", id))
        .collect::<Result<Vec<_>, _>>()?;
    let task_ids = engine.redrive(&caller.tenant, &ids, &f).await?;
    let task_ids: Vec<String> = task_ids.iter().map(ToString::to_string).collect();
    Ok(Json(json!({"redriven": task_ids.len(), "task_ids": task_ids})))
}
