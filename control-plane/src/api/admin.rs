//! AdminService: dead letters, workers, queues. Defined in proto/, implemented by the execution issue.

use braid_proto::v1 as pb;
use braid_proto::v1::admin_service_server::AdminService;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone, Copy, Default)]
pub struct AdminApi;

fn missing<T>(rpc: &str, what: &str) -> Result<Response<T>, Status> {
    Err(Status::unimplemented(format!(
        "AdminService.{rpc} is not implemented yet: {what} arrive with the execution issue"
    )))
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn list_dead_letters(
        &self,
        _: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        missing("ListDeadLetters", "dead letters")
    }
    async fn redrive_dead_letters(
        &self,
        _: Request<pb::RedriveDeadLettersRequest>,
    ) -> Result<Response<pb::RedriveDeadLettersResponse>, Status> {
        missing("RedriveDeadLetters", "dead letters")
    }
    async fn list_workers(
        &self,
        _: Request<pb::ListWorkersRequest>,
    ) -> Result<Response<pb::ListWorkersResponse>, Status> {
        missing("ListWorkers", "connected workers")
    }
    async fn list_queues(&self, _: Request<pb::ListQueuesRequest>) -> Result<Response<pb::ListQueuesResponse>, Status> {
        missing("ListQueues", "dispatch queues")
    }
}
