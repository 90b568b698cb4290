//! Workers and queues on the dashboard API: connected workers with their load, queues with depth, lag, throughput and capacity.

use super::json::time;
use crate::domain::auth::Principal;
use crate::engine::Engine;
use crate::engine::insight::THROUGHPUT_WINDOW;
use crate::http::error::HttpError;
use axum::extract::State;
use axum::{Extension, Json};
use serde_json::{Value, json};

/// `GET /api/v1/workers`.
pub async fn workers(
    State(engine): State<Engine>,
    Extension(caller): Extension<Principal>,
) -> Result<Json<Value>, HttpError> {
    let loads = engine.worker_loads(&caller.tenant).await?;
    let workers: Vec<Value> = loads
        .iter()
        .map(|l| {
            let w = &l.worker;
            json!({"id": w.id.to_string(), "name": w.name, "sdk_language": w.sdk_language,
                   "sdk_version": w.sdk_version, "task_types": w.task_types, "slots": w.slots,
                   "leases_held": l.leases_held, "free_slots": l.free_slots(), "labels": w.labels,
                   "control_plane": w.control_plane, "draining": w.draining,
                   "connected_at": time(w.connected_at), "last_heartbeat_at": time(w.last_heartbeat_at)})
        })
        .collect();
    Ok(Json(json!({"workers": workers})))
}

/// `GET /api/v1/queues`: per task type; throughput is tasks leased in the last minute.
pub async fn queues(
    State(engine): State<Engine>,
    Extension(caller): Extension<Principal>,
) -> Result<Json<Value>, HttpError> {
    let queues = engine.queue_insights(&caller.tenant).await?;
    let queues: Vec<Value> = queues
        .iter()
        .map(|q| {
            json!({"task_type": q.queue.task_type, "ready": q.queue.ready, "leased": q.queue.leased,
                   "lag_seconds": q.queue.lag.as_secs_f64(), "workers": q.queue.workers,
                   "free_slots": q.free_slots, "dispatched_last_minute": q.dispatched})
        })
        .collect();
    Ok(Json(json!({"queues": queues, "throughput_window_seconds": THROUGHPUT_WINDOW.num_seconds()})))
}
