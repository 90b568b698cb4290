//! The drill's gRPC client of a control plane: apply workflows, trigger runs, read runs, dead letters and workers.

use super::DrillError;
use crate::api::convert::definition_to_proto;
use crate::domain::definition::WorkflowDefinition;
use braid_proto::v1 as pb;
use braid_proto::v1::admin_service_client::AdminServiceClient;
use braid_proto::v1::run_service_client::RunServiceClient;
use braid_proto::v1::workflow_service_client::WorkflowServiceClient;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// Longest wait for one call; a control plane that is down answers UNAVAILABLE at once.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A lazily connected client of one control plane (it reconnects by itself after a restart).
#[derive(Debug, Clone)]
pub struct Api {
    pub endpoint: String,
    channel: Channel,
}

impl Api {
    pub fn new(endpoint: &str) -> Result<Self, DrillError> {
        let channel = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| DrillError::Config(format!("endpoint {endpoint}: {e}")))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(CALL_TIMEOUT)
            .connect_lazy();
        Ok(Self { endpoint: endpoint.to_owned(), channel })
    }

    /// Stores a workflow definition written as YAML.
    pub async fn apply(&self, yaml: &str) -> Result<(), DrillError> {
        let def = WorkflowDefinition::from_file_contents("drill.yaml", yaml)
            .map_err(|e| DrillError::Config(format!("drill workflow: {e}")))?;
        let mut api = WorkflowServiceClient::new(self.channel.clone());
        api.put_workflow(pb::PutWorkflowRequest { definition: Some(definition_to_proto(&def)) }).await?;
        Ok(())
    }

    pub async fn trigger(
        &self,
        workflow: &str,
        input: &str,
        key: Option<&str>,
    ) -> Result<pb::TriggerRunResponse, tonic::Status> {
        let mut api = RunServiceClient::new(self.channel.clone());
        let req = pb::TriggerRunRequest {
            workflow_name: workflow.to_owned(),
            workflow_version: 0,
            input_json: input.to_owned(),
            idempotency_key: key.unwrap_or_default().to_owned(),
            ..Default::default()
        };
        Ok(api.trigger_run(req).await?.into_inner())
    }

    pub async fn get_run(&self, id: &str) -> Result<pb::Run, tonic::Status> {
        let mut api = RunServiceClient::new(self.channel.clone());
        let run = api.get_run(pb::GetRunRequest { run_id: id.to_owned() }).await?.into_inner().run;
        run.ok_or_else(|| tonic::Status::internal(format!("GetRun {id} returned no run")))
    }

    /// Every dead letter not yet redriven.
    pub async fn dead_letters(&self) -> Result<Vec<pb::DeadLetter>, DrillError> {
        let mut api = AdminServiceClient::new(self.channel.clone());
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let req = pb::ListDeadLettersRequest {
                filter: None,
                page: Some(pb::PageRequest { page_size: 500, page_token: token }),
            };
            let out = api.list_dead_letters(req).await?.into_inner();
            all.extend(out.dead_letters);
            if out.next_page_token.is_empty() {
                return Ok(all);
            }
            token = out.next_page_token;
        }
    }

    /// Workers connected to any control plane.
    pub async fn workers(&self) -> Result<Vec<pb::WorkerInfo>, DrillError> {
        let mut api = AdminServiceClient::new(self.channel.clone());
        Ok(api.list_workers(pb::ListWorkersRequest::default()).await?.into_inner().workers)
    }
}

/// Whether a failed trigger may be sent again with the same idempotency key.
pub fn retryable(s: &tonic::Status) -> bool {
    use tonic::Code;
    match s.code() {
        Code::Unavailable
        | Code::Unknown
        | Code::Internal
        | Code::Aborted
        | Code::DeadlineExceeded
        | Code::Cancelled
        | Code::ResourceExhausted => true,
        Code::Ok
        | Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::DataLoss
        | Code::Unauthenticated => false,
    }
}
