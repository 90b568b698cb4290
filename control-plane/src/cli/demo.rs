//! `braid dev`'s demo: a workflow, an in-process worker serving it, and one run at start.

use crate::domain::definition::WorkflowDefinition;
use crate::domain::records::Tenant;
use crate::engine::trigger::TriggerRequest;
use crate::engine::{Engine, EngineError};
use braid_worker::{TaskContext, TaskError, Worker};
use serde_json::{Value, json};
use std::time::Duration;

/// The demo workflow: extract numbers, transform them three ways in parallel, report.
pub const DEMO_WORKFLOW: &str = r#"
name: braid-demo
description: "The demo of `braid dev`: extract, three parallel transforms, report."
settings:
  default_retry: {max_attempts: 3, initial_backoff: 200ms, max_backoff: 2s}
  default_task_timeout: 30s
tasks:
  - {name: extract, task_type: demo-extract}
  - {name: double, task_type: demo-map, depends_on: [extract]}
  - {name: square, task_type: demo-map, depends_on: [extract]}
  - {name: negate, task_type: demo-map, depends_on: [extract]}
  - {name: report, task_type: demo-report, depends_on: [double, square, negate]}
"#;

/// A pause per task, so a person watching `braid run get` sees the DAG move.
const STEP: Duration = Duration::from_millis(300);

async fn extract(input: Value, _ctx: TaskContext) -> Result<Value, TaskError> {
    tokio::time::sleep(STEP).await;
    let n = input.get("n").and_then(Value::as_u64).unwrap_or(5).min(1000);
    Ok(json!({"numbers": (1..=n).collect::<Vec<_>>()}))
}

async fn map(_input: Value, ctx: TaskContext) -> Result<Value, TaskError> {
    tokio::time::sleep(STEP).await;
    let extracted: Value = ctx.deps("extract")?;
    let numbers: Vec<i64> = extracted["numbers"].as_array().into_iter().flatten().filter_map(Value::as_i64).collect();
    let op = ctx.task_name().to_owned();
    let out: Vec<i64> = numbers
        .iter()
        .map(|n| match op.as_str() {
            "double" => n * 2,
            "square" => n * n,
            _ => -n,
        })
        .collect();
    Ok(json!({"op": op, "numbers": out}))
}

async fn report(_input: Value, ctx: TaskContext) -> Result<Value, TaskError> {
    tokio::time::sleep(STEP).await;
    let mut sums = serde_json::Map::new();
    for (name, v) in ctx.deps_raw() {
        let sum: i64 = v["numbers"].as_array().into_iter().flatten().filter_map(Value::as_i64).sum();
        sums.insert(name.clone(), json!(sum));
    }
    Ok(json!({"sums": sums}))
}

/// The in-process worker serving the demo's task types through the gRPC API.
pub fn worker(endpoint: String, token: Option<&str>) -> Result<Worker, braid_worker::WorkerError> {
    Worker::builder()
        .endpoint(endpoint)
        .token(token.unwrap_or_default())
        .name("braid-dev-demo")
        .slots(4)
        .drain_timeout(Duration::from_secs(5))
        .task("demo-extract", extract)
        .task("demo-map", map)
        .task("demo-report", report)
        .build()
}

/// Stores the demo workflow (a no-op when unchanged) and triggers one run of it.
pub async fn start(engine: &Engine) -> Result<uuid::Uuid, EngineError> {
    let def = WorkflowDefinition::from_yaml_str(DEMO_WORKFLOW)
        .map_err(|e| EngineError::invalid("demo workflow", e.to_string()))?;
    let tenant = Tenant::default_tenant();
    engine.put_workflow(&tenant, &def).await?;
    let req = TriggerRequest {
        workflow_name: def.name.clone(),
        input_json: r#"{"n": 5}"#.into(),
        ..TriggerRequest::default()
    };
    Ok(engine.trigger_run(&tenant, &req).await?.run.run.id)
}
