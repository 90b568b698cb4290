//! WorkerService: the worker stream. Its protocol is specified in proto/ and arrives with the execution issue.

use braid_proto::v1 as pb;
use braid_proto::v1::worker_service_server::WorkerService;
use std::pin::Pin;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

#[derive(Debug, Clone, Copy, Default)]
pub struct WorkerApi;

type Assignments = Pin<Box<dyn Stream<Item = Result<pb::ConnectResponse, Status>> + Send>>;

#[tonic::async_trait]
impl WorkerService for WorkerApi {
    type ConnectStream = Assignments;

    async fn connect(
        &self,
        _req: Request<Streaming<pb::ConnectRequest>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        Err(Status::unimplemented(
            "WorkerService.Connect is not implemented yet: leasing, heartbeats and results arrive with the execution issue",
        ))
    }
}
