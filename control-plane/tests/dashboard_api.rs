//! The dashboard's JSON API on SQLite and PostgreSQL: run filters, run detail with "why isn't this running", downloads, cancel, re-run, redrive, dead-letter groups; and the embedded page.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::{Extension, Router};
use braid_control_plane::domain::auth::Principal;
use braid_control_plane::domain::records::TaskError;
use braid_control_plane::engine::complete::Outcome;
use braid_control_plane::engine::trigger::TriggerRequest;
use braid_control_plane::http;
use common::{TestDb, diamond, tenant, yaml};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

/// The API as the auth middleware hands it requests: acting as an admin of the default tenant.
fn api(db: &TestDb) -> Router {
    http::api::routes(db.engine.clone()).layer(Extension(Principal::insecure())).merge(http::dashboard::routes())
}

async fn call(app: &Router, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let req = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    let req = req.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
    let value =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    call(app, Method::GET, uri, None).await
}

async fn post(app: &Router, uri: &str, body: Value) -> (StatusCode, Value) {
    call(app, Method::POST, uri, Some(body)).await
}

async fn trigger(db: &TestDb, workflow: &str, input: &str, key: Option<&str>) -> Uuid {
    let req = TriggerRequest {
        workflow_name: workflow.into(),
        input_json: input.into(),
        idempotency_key: key.map(str::to_owned),
        ..TriggerRequest::default()
    };
    db.engine.trigger_run(&tenant(), &req).await.unwrap().run.run.id
}

/// Leases the run's ready task named `name` as worker `w` and reports `outcome`.
async fn finish(db: &TestDb, run: Uuid, name: &str, outcome: Outcome) {
    let detail = db.engine.get_run(&tenant(), run).await.unwrap();
    let task = detail.tasks.iter().find(|t| t.name == name).unwrap();
    let leased = db.engine.lease(&tenant(), "w", &[task.id]).await.unwrap();
    assert_eq!(leased.len(), 1, "task {name} was not ready");
    db.engine.complete(&tenant(), leased[0].key, outcome).await.unwrap();
}

fn ids(v: &Value) -> Vec<String> {
    v["runs"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
}

async fn run_list_filters(db: &TestDb) {
    let app = api(db);
    db.engine.put_workflow(&tenant(), &diamond("alpha")).await.unwrap();
    db.engine.put_workflow(&tenant(), &diamond("beta")).await.unwrap();
    let a1 = trigger(db, "alpha", "{}", Some("order-1")).await.to_string();
    let a2 = trigger(db, "alpha", "{}", None).await.to_string();
    let b1 = trigger(db, "beta", "{}", Some("order-1")).await.to_string();

    let (s, all) = get(&app, "/api/v1/runs").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ids(&all), [b1.clone(), a2.clone(), a1.clone()], "newest first");
    assert_eq!(all["runs"][0]["task_counts"]["ready"], 1);
    assert_eq!(all["runs"][0]["task_counts"]["pending"], 3);
    assert_eq!(ids(&get(&app, "/api/v1/runs?workflow=alpha").await.1), [a2.clone(), a1.clone()]);
    assert_eq!(ids(&get(&app, "/api/v1/runs?key=order-1").await.1), [b1.clone(), a1.clone()]);
    assert_eq!(ids(&get(&app, &format!("/api/v1/runs?id={a2}")).await.1), std::slice::from_ref(&a2));
    assert_eq!(ids(&get(&app, "/api/v1/runs?state=running,queued&source=api").await.1).len(), 3);
    assert!(ids(&get(&app, "/api/v1/runs?state=failed").await.1).is_empty());
    assert!(ids(&get(&app, "/api/v1/runs?source=schedule").await.1).is_empty());
    let page = get(&app, "/api/v1/runs?page_size=2").await.1;
    assert_eq!(ids(&page), [b1, a2]);
    let token = page["next_page_token"].as_str().unwrap();
    assert_eq!(ids(&get(&app, &format!("/api/v1/runs?page_size=2&page_token={token}")).await.1), [a1]);

    let (s, e) = get(&app, "/api/v1/runs?state=sleeping").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["code"], "invalid_argument");
    assert!(e["error"]["message"].as_str().unwrap().starts_with("state:"), "{e}");
    let (s, e) = get(&app, "/api/v1/runs?after=yesterday").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e["error"]["message"].as_str().unwrap().starts_with("after:"), "{e}");
    let (s, e) = get(&app, &format!("/api/v1/runs/{}", Uuid::now_v7())).await;
    assert_eq!((s, e["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
}
on_both_backends!(runs_are_listed_by_every_filter, run_list_filters);

fn task<'a>(detail: &'a Value, name: &str) -> &'a Value {
    detail["tasks"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap()
}

async fn run_detail_says_why(db: &TestDb) {
    let app = api(db);
    db.engine.put_workflow(&tenant(), &diamond("why")).await.unwrap();
    let run = trigger(db, "why", r#"{"n": 7}"#, None).await;
    let (s, d) = get(&app, &format!("/api/v1/runs/{run}")).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["run"]["state"], "running");
    assert_eq!(d["run"]["input"]["text"], "{\n  \"n\": 7\n}");
    assert!(d["last_sequence"].as_u64().unwrap() > 0);
    assert_eq!(task(&d, "a")["blocker"]["kind"], "no_worker", "{d}");
    assert_eq!(task(&d, "a")["blocker"]["message"], "no connected worker serves task type \"t\"");
    let b = &task(&d, "b")["blocker"];
    assert_eq!(b["kind"], "dependencies");
    assert_eq!(b["waiting_on"], json!([{"task": "a", "state": "ready"}]));
    assert_eq!(task(&d, "d")["blocker"]["waiting_on"].as_array().unwrap().len(), 2);

    let big = "x".repeat(100 * 1024);
    finish(db, run, "a", Outcome::Succeeded { output_json: json!({"big": big}).to_string() }).await;
    let d = get(&app, &format!("/api/v1/runs/{run}")).await.1;
    let a = task(&d, "a");
    assert_eq!(a["state"], "succeeded");
    assert!(a["blocker"].is_null());
    assert_eq!(a["attempts"][0]["worker_id"], "w");
    assert_eq!(a["attempts"][0]["outcome"], "succeeded");
    assert_eq!(a["output"]["truncated"], true);
    assert_eq!(a["output"]["text"].as_str().unwrap().len(), 64 * 1024);
    let (s, full) = get(&app, a["output"]["download"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(full["big"].as_str().unwrap().len(), 100 * 1024);
    let (_, input) = get(&app, task(&d, "b")["input_download"].as_str().unwrap()).await;
    assert_eq!(input["input"], json!({"n": 7}));
    assert_eq!(input["deps"]["a"]["big"].as_str().unwrap().len(), 100 * 1024);
    let (s, view) = get(&app, &format!("/api/v1/runs/{run}/tasks/b")).await;
    assert_eq!(s, StatusCode::OK, "{view}");
    assert_eq!(view["input"]["truncated"], true);
    assert_eq!(view["input"]["download"], task(&d, "b")["input_download"]);
    let (s, e) = get(&app, &format!("/api/v1/runs/{run}/tasks/nope")).await;
    assert_eq!((s, e["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    assert_eq!(task(&d, "b")["blocker"]["kind"], "no_worker");
    assert_eq!(
        task(&d, "d")["blocker"]["waiting_on"],
        json!([{"task": "b", "state": "ready"}, {"task": "c", "state": "ready"}])
    );

    let (_, ev) = get(&app, &format!("/api/v1/runs/{run}/events?after=0")).await;
    let kinds: Vec<&str> = ev["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"task_leased") && kinds.contains(&"task_succeeded"), "{kinds:?}");
    assert_eq!(ev["run_state"], "running");
}
on_both_backends!(run_detail_says_why_tasks_wait, run_detail_says_why);

const FRAGILE: &str = "name: fragile\ntasks:\n  - {name: first, task_type: t, retry: {max_attempts: 1}}\n  - {name: second, task_type: t, depends_on: [first]}\n";

fn failure(kind: &str) -> Outcome {
    Outcome::Failed(TaskError { message: format!("{kind} broke"), kind: kind.into(), retryable: false, details: None })
}

async fn actions(db: &TestDb) {
    let app = api(db);
    db.engine.put_workflow(&tenant(), &yaml(FRAGILE)).await.unwrap();
    let r1 = trigger(db, "fragile", r#"{"x": 1}"#, None).await;
    let r2 = trigger(db, "fragile", "{}", None).await;
    let r3 = trigger(db, "fragile", "{}", None).await;
    finish(db, r1, "first", failure("timeout")).await;
    finish(db, r2, "first", failure("timeout")).await;
    finish(db, r3, "first", failure("bad_input")).await;

    let (_, g) = get(&app, "/api/v1/dead-letters/groups").await;
    assert_eq!(g["total"], 3);
    let groups = g["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{g}");
    assert_eq!((groups[0]["error_type"].as_str(), groups[0]["count"].as_u64()), (Some("bad_input"), Some(1)));
    assert_eq!(groups[0]["latest_run_id"], r3.to_string());
    assert_eq!((groups[1]["error_type"].as_str(), groups[1]["count"].as_u64()), (Some("timeout"), Some(2)));
    assert_eq!(groups[1]["latest_error"]["message"], "timeout broke");
    let d = get(&app, &format!("/api/v1/runs/{r1}")).await.1;
    assert_eq!(task(&d, "second")["state"], "skipped");
    assert_eq!(task(&d, "second")["blocker"], Value::Null);

    // Redrive one run from its page; a second time there is nothing to redrive.
    let (s, out) = post(&app, &format!("/api/v1/runs/{r1}/redrive"), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(out["redriven"].as_array().unwrap().len(), 1);
    assert_eq!(get(&app, &format!("/api/v1/runs/{r1}")).await.1["run"]["state"], "running");
    let (s, e) = post(&app, &format!("/api/v1/runs/{r1}/redrive"), json!({})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("failed_precondition")));

    // Redrive all matching a filter; a body naming both is refused and changes nothing.
    let (s, e) =
        post(&app, "/api/v1/dead-letters/redrive", json!({"ids": [Uuid::now_v7().to_string()], "filter": {}})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, out) = post(&app, "/api/v1/dead-letters/redrive", json!({"filter": {"error_type": "bad_input"}})).await;
    assert_eq!((s, out["redriven"].as_u64()), (StatusCode::OK, Some(1)), "{out}");
    let (_, left) = get(&app, "/api/v1/dead-letters").await;
    let left = left["dead_letters"].as_array().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["run_id"], r2.to_string());
    let (s, out) = post(&app, "/api/v1/dead-letters/redrive", json!({"ids": [left[0]["id"]]})).await;
    assert_eq!((s, out["redriven"].as_u64()), (StatusCode::OK, Some(1)), "{out}");

    // Re-run: a new run of the same version with the same input.
    let (s, out) = post(&app, &format!("/api/v1/runs/{r1}/rerun"), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let new = out["run_id"].as_str().unwrap();
    assert_ne!(new, r1.to_string());
    let d = get(&app, &format!("/api/v1/runs/{new}")).await.1;
    assert_eq!((d["run"]["workflow"].as_str(), d["run"]["version"].as_u64()), (Some("fragile"), Some(1)));
    assert_eq!(d["run"]["input"]["text"], "{\n  \"x\": 1\n}");

    // Cancel, then cancel again: the second changes nothing.
    let (s, out) = post(&app, &format!("/api/v1/runs/{new}/cancel"), json!({"reason": "not needed"})).await;
    assert_eq!((s, out), (StatusCode::OK, json!({"state": "cancelled", "changed": true})));
    let (_, out) = post(&app, &format!("/api/v1/runs/{new}/cancel"), json!({})).await;
    assert_eq!(out, json!({"state": "cancelled", "changed": false}));
    let d = get(&app, &format!("/api/v1/runs/{new}")).await.1;
    assert_eq!(d["run"]["reason"], "not needed");
    assert_eq!(task(&d, "first")["state"], "cancelled");
}
on_both_backends!(cancel_rerun_and_redrive_from_the_api, actions);

#[tokio::test]
async fn the_page_and_its_files_are_served_from_the_binary() {
    let app = http::dashboard::routes();
    let res = app.clone().oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    let body = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
    let html = String::from_utf8(body.to_vec()).unwrap();
    assert!(html.contains("/ui/app.js"), "the page loads its script");
    let res = app.clone().oneshot(Request::get("/ui/app.js").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/javascript; charset=utf-8");
    let res = app.oneshot(Request::get("/ui/missing.js").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}
