//! The bench's gRPC client: its workflows (`bench-noop`, `bench-dag`), and triggers one per call or in bulk.

use super::BenchError;
use super::recorder::{SINK, epoch_ns};
use crate::api::convert::definition_to_proto;
use crate::domain::definition::{TaskDefinition, WorkflowDefinition};
use braid_proto::v1 as pb;
use braid_proto::v1::run_service_client::RunServiceClient;
use braid_proto::v1::workflow_service_client::WorkflowServiceClient;
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

/// One-task workflow.
pub const NOOP: &str = "bench-noop";
/// 1 → W → 1 workflow: `root`, `mid-000`…, `sink`.
pub const DAG: &str = "bench-dag";
/// Longest wait for one call (a bulk trigger of 1,000 DAG runs included).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// The one-task workflow.
pub fn noop_workflow(task_type: &str) -> WorkflowDefinition {
    let task = TaskDefinition { name: "noop".into(), task_type: task_type.into(), ..TaskDefinition::default() };
    WorkflowDefinition {
        name: NOOP.into(),
        description: "braid bench: one noop task".into(),
        tasks: vec![task],
        ..WorkflowDefinition::default()
    }
}

/// The fan-out/fan-in workflow 1 → `width` → 1.
pub fn dag_workflow(task_type: &str, width: usize) -> WorkflowDefinition {
    let task = |name: String, deps: Vec<String>| TaskDefinition {
        name,
        task_type: task_type.into(),
        depends_on: deps,
        ..TaskDefinition::default()
    };
    let mids: Vec<String> = (0..width).map(|i| format!("mid-{i:03}")).collect();
    let mut tasks = vec![task("root".into(), vec![])];
    tasks.extend(mids.iter().map(|m| task(m.clone(), vec!["root".into()])));
    tasks.push(task(SINK.into(), mids));
    WorkflowDefinition {
        name: DAG.into(),
        description: format!("braid bench: 1 → {width} → 1 noop tasks"),
        tasks,
        ..WorkflowDefinition::default()
    }
}

/// `{"t_ns": now}`: the enqueue instant, taken just before the trigger call.
pub fn stamped_input() -> String {
    format!("{{\"t_ns\":{}}}", epoch_ns())
}

/// How runs are triggered.
#[derive(Debug, Clone, Copy)]
pub enum Submit {
    /// TriggerRuns with this many runs per call and this many calls in flight.
    Bulk { batch: usize, in_flight: usize },
    /// One TriggerRun per run, this many in flight.
    PerCall { in_flight: usize },
}

/// A client of one control plane.
#[derive(Debug, Clone)]
pub struct Client {
    pub endpoint: String,
    channel: Channel,
}

impl Client {
    /// Connects (once: an endpoint that does not answer is an error).
    pub async fn connect(endpoint: &str) -> Result<Self, BenchError> {
        let fail = |reason: String| BenchError::Connect { endpoint: endpoint.to_owned(), reason };
        let channel = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| fail(e.to_string()))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(CALL_TIMEOUT)
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self { endpoint: endpoint.to_owned(), channel })
    }

    /// Stores a workflow as its next version (or finds the same content); returns the version.
    pub async fn put_workflow(&self, def: &WorkflowDefinition) -> Result<u32, BenchError> {
        let mut api = WorkflowServiceClient::new(self.channel.clone());
        let req = pb::PutWorkflowRequest { definition: Some(definition_to_proto(def)) };
        let out = api.put_workflow(req).await.map_err(|s| BenchError::rpc("PutWorkflow", &s))?.into_inner();
        Ok(out.workflow.map_or(0, |w| w.version))
    }

    fn request(workflow: &str, input: String) -> pb::TriggerRunRequest {
        pb::TriggerRunRequest {
            workflow_name: workflow.to_owned(),
            workflow_version: 0,
            input_json: input,
            idempotency_key: String::new(),
            ..Default::default()
        }
    }

    /// One TriggerRun.
    pub async fn trigger(&self, workflow: &str, input: String) -> Result<(), BenchError> {
        let mut api = RunServiceClient::new(self.channel.clone());
        api.trigger_run(Self::request(workflow, input)).await.map_err(|s| BenchError::rpc("TriggerRun", &s))?;
        Ok(())
    }

    /// One TriggerRuns with `inputs.len()` runs.
    pub async fn trigger_many(&self, workflow: &str, inputs: Vec<String>) -> Result<(), BenchError> {
        let n = inputs.len();
        let runs = inputs.into_iter().map(|i| Self::request(workflow, i)).collect();
        let mut api = RunServiceClient::new(self.channel.clone());
        let out = api
            .trigger_runs(pb::TriggerRunsRequest { runs })
            .await
            .map_err(|s| BenchError::rpc("TriggerRuns", &s))?
            .into_inner();
        if out.runs.len() != n {
            return Err(BenchError::Rpc {
                call: "TriggerRuns",
                code: tonic::Code::Internal,
                message: format!("asked for {n} runs, got {} back", out.runs.len()),
            });
        }
        Ok(())
    }

    /// Triggers `n` runs of `workflow` the way `how` says, each with `input()` made just before
    /// its call; counts acknowledged runs into `sent`. Returns the instant before the first call.
    pub async fn submit(
        &self,
        workflow: &str,
        n: u64,
        how: Submit,
        input: fn() -> String,
        sent: &Arc<AtomicU64>,
    ) -> Result<Instant, BenchError> {
        let first = Instant::now();
        match how {
            Submit::Bulk { batch, in_flight } => {
                let batch = batch.max(1) as u64;
                let sizes = (0..n.div_ceil(batch)).map(|i| (n - i * batch).min(batch));
                let calls = sizes.map(|size| async move {
                    let inputs: Vec<String> = (0..size).map(|_| input()).collect();
                    self.trigger_many(workflow, inputs).await?;
                    sent.fetch_add(size, Ordering::Relaxed);
                    Ok::<_, BenchError>(())
                });
                let mut calls = futures::stream::iter(calls).buffer_unordered(in_flight.max(1));
                while let Some(r) = calls.next().await {
                    r?;
                }
            }
            Submit::PerCall { in_flight } => {
                let calls = (0..n).map(|_| async move {
                    self.trigger(workflow, input()).await?;
                    sent.fetch_add(1, Ordering::Relaxed);
                    Ok::<_, BenchError>(())
                });
                let mut calls = futures::stream::iter(calls).buffer_unordered(in_flight.max(1));
                while let Some(r) = calls.next().await {
                    r?;
                }
            }
        }
        Ok(first)
    }
}
