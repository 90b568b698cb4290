//! WorkflowService: authoring adapters.

use super::{convert, tenant_of};
use crate::domain::validate::ValidationError;
use crate::engine::{Engine, EngineError};
use braid_proto::v1 as pb;
use braid_proto::v1::workflow_service_server::WorkflowService;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone)]
pub struct WorkflowApi {
    engine: Engine,
}

impl WorkflowApi {
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }
}

fn definition(d: Option<pb::WorkflowDefinition>) -> Result<crate::domain::definition::WorkflowDefinition, EngineError> {
    let d = d.ok_or_else(|| EngineError::invalid("definition", "is required"))?;
    convert::definition(d).map_err(EngineError::InvalidDefinition)
}

#[tonic::async_trait]
impl WorkflowService for WorkflowApi {
    async fn put_workflow(
        &self,
        req: Request<pb::PutWorkflowRequest>,
    ) -> Result<Response<pb::PutWorkflowResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let def = definition(req.into_inner().definition)?;
        let out = self.engine.put_workflow(&tenant, &def).await?;
        Ok(Response::new(pb::PutWorkflowResponse {
            workflow: Some(convert::workflow(&out.workflow)),
            created: out.created,
        }))
    }

    async fn validate_workflow(
        &self,
        req: Request<pb::ValidateWorkflowRequest>,
    ) -> Result<Response<pb::ValidateWorkflowResponse>, Status> {
        let errors = match definition(req.into_inner().definition) {
            Ok(def) => self.engine.validate_workflow(&def),
            Err(EngineError::InvalidDefinition(errors)) => errors,
            Err(EngineError::InvalidArgument { field, reason }) => vec![ValidationError { path: field, reason }],
            Err(other) => return Err(other.into()),
        };
        Ok(Response::new(pb::ValidateWorkflowResponse {
            valid: errors.is_empty(),
            errors: errors.iter().map(convert::validation_error).collect(),
        }))
    }

    async fn get_workflow(
        &self,
        req: Request<pb::GetWorkflowRequest>,
    ) -> Result<Response<pb::GetWorkflowResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let r = req.into_inner();
        let version = (r.version != 0).then_some(r.version);
        let w = self.engine.get_workflow(&tenant, &r.name, version).await?;
        Ok(Response::new(pb::GetWorkflowResponse { workflow: Some(convert::workflow(&w)) }))
    }

    async fn list_workflows(
        &self,
        req: Request<pb::ListWorkflowsRequest>,
    ) -> Result<Response<pb::ListWorkflowsResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let page = req.into_inner().page.unwrap_or_default();
        let out = self.engine.list_workflows(&tenant, page.page_size, &page.page_token).await?;
        Ok(Response::new(pb::ListWorkflowsResponse {
            workflows: out.items.iter().map(convert::workflow_summary).collect(),
            next_page_token: out.next.unwrap_or_default(),
        }))
    }
}
