//! The gRPC services: thin adapters from proto to one engine call and back.

pub mod admin;
pub mod auth;
pub mod convert;
pub mod flow;
pub mod layer;
pub mod run;
pub mod schedule;
pub mod status;
pub mod worker;
pub mod workflow;

use crate::engine::Engine;
use braid_proto::v1::admin_service_server::AdminServiceServer;
use braid_proto::v1::run_service_server::RunServiceServer;
use braid_proto::v1::schedule_service_server::ScheduleServiceServer;
use braid_proto::v1::worker_service_server::WorkerServiceServer;
use braid_proto::v1::workflow_service_server::WorkflowServiceServer;
use tonic::service::Routes;

pub use auth::{principal_of, tenant_of};

/// Largest message a worker stream accepts (results carry outputs up to the payload limit, at
/// most 32 MiB), and the largest `TriggerRun`/`TriggerRuns` request (inputs up to the same limit).
pub use crate::domain::limits::MAX_WORKER_MESSAGE_BYTES;

/// Every braid.v1 service, ready to be added to a tonic server.
pub fn routes(engine: Engine, shutdown: tokio_util::sync::CancellationToken) -> Routes {
    let mut routes = Routes::default();
    routes = routes
        .add_service(WorkflowServiceServer::new(workflow::WorkflowApi::new(engine.clone())))
        // A run input up to the payload limit arrives and is judged (too large: INVALID_ARGUMENT
        // naming the limit) instead of being cut off by tonic's default of 4 MiB.
        .add_service(
            RunServiceServer::new(run::RunApi::new(engine.clone())).max_decoding_message_size(MAX_WORKER_MESSAGE_BYTES),
        )
        // Results up to this size arrive and are judged (a too-large output fails its task
        // cleanly); the default of 4 MiB would end the stream instead.
        .add_service(
            WorkerServiceServer::new(worker::WorkerApi::new(engine.clone(), shutdown))
                .max_decoding_message_size(MAX_WORKER_MESSAGE_BYTES),
        )
        .add_service(ScheduleServiceServer::new(schedule::ScheduleApi::new(engine.clone())))
        .add_service(AdminServiceServer::new(admin::AdminApi::new(engine)));
    routes
}

/// Names of the braid.v1 services, for health reporting.
pub const SERVICE_NAMES: [&str; 5] = [
    "braid.v1.WorkflowService",
    "braid.v1.RunService",
    "braid.v1.WorkerService",
    "braid.v1.ScheduleService",
    "braid.v1.AdminService",
];
