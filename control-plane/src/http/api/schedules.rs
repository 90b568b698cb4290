//! Schedules on the dashboard API: each with its next fire times and newest runs; pause and resume.

use super::json::{opt_time, time};
use super::uuid;
use crate::domain::auth::Principal;
use crate::domain::records::Run;
use crate::domain::schedule::ScheduleView;
use crate::engine::Engine;
use crate::http::error::HttpError;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::{Value, json};

fn schedule_json(v: &ScheduleView, recent: Option<&[Run]>) -> Value {
    let s = &v.schedule;
    let mut out = json!({"id": s.id.to_string(), "name": s.name, "workflow": s.workflow_name, "cron": s.cron,
        "timezone": if s.timezone.is_empty() { "UTC" } else { s.timezone.as_str() },
        "overlap": s.overlap.as_str(), "paused": s.paused, "priority": s.priority.as_str(),
        "next_fire_times": v.next_fire_times.iter().map(|t| time(*t)).collect::<Vec<_>>(),
        "last_tick": opt_time(s.last_tick)});
    if let Some(runs) = recent {
        out["recent_runs"] = runs
            .iter()
            .map(|r| {
                json!({"id": r.id.to_string(), "state": r.state.as_str(),
                       "scheduled_for": opt_time(r.schedule.map(|t| t.nominal)),
                       "created_at": time(r.created_at), "finished_at": opt_time(r.finished_at)})
            })
            .collect();
    }
    out
}

/// `GET /api/v1/schedules`: by name, with the newest runs of each.
pub async fn list(
    State(engine): State<Engine>,
    Extension(caller): Extension<Principal>,
) -> Result<Json<Value>, HttpError> {
    let page = engine.schedules_with_runs(&caller.tenant, 200, "").await?;
    let items: Vec<Value> = page.items.iter().map(|(v, runs)| schedule_json(v, Some(runs))).collect();
    Ok(Json(json!({"schedules": items})))
}

async fn set_paused(engine: &Engine, caller: &Principal, id: &str, paused: bool) -> Result<Json<Value>, HttpError> {
    let id = uuid("id", "schedule", id)?;
    let v = engine.set_schedule_paused(&caller.tenant, id, paused).await?;
    Ok(Json(schedule_json(&v, None)))
}

/// `POST /api/v1/schedules/{id}/pause`.
pub async fn pause(
    State(engine): State<Engine>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, HttpError> {
    set_paused(&engine, &caller, &id, true).await
}

/// `POST /api/v1/schedules/{id}/resume`.
pub async fn resume(
    State(engine): State<Engine>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, HttpError> {
    set_paused(&engine, &caller, &id, false).await
}
