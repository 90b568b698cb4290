//! ScheduleService: cron schedules. Defined in proto/, implemented by the scheduling issue.

use braid_proto::v1 as pb;
use braid_proto::v1::schedule_service_server::ScheduleService;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone, Copy, Default)]
pub struct ScheduleApi;

fn missing<T>(rpc: &str) -> Result<Response<T>, Status> {
    Err(Status::unimplemented(format!(
        "ScheduleService.{rpc} is not implemented yet: cron schedules arrive with the scheduling issue"
    )))
}

#[tonic::async_trait]
impl ScheduleService for ScheduleApi {
    async fn create_schedule(
        &self,
        _: Request<pb::CreateScheduleRequest>,
    ) -> Result<Response<pb::CreateScheduleResponse>, Status> {
        missing("CreateSchedule")
    }
    async fn get_schedule(
        &self,
        _: Request<pb::GetScheduleRequest>,
    ) -> Result<Response<pb::GetScheduleResponse>, Status> {
        missing("GetSchedule")
    }
    async fn list_schedules(
        &self,
        _: Request<pb::ListSchedulesRequest>,
    ) -> Result<Response<pb::ListSchedulesResponse>, Status> {
        missing("ListSchedules")
    }
    async fn update_schedule(
        &self,
        _: Request<pb::UpdateScheduleRequest>,
    ) -> Result<Response<pb::UpdateScheduleResponse>, Status> {
        missing("UpdateSchedule")
    }
    async fn pause_schedule(
        &self,
        _: Request<pb::PauseScheduleRequest>,
    ) -> Result<Response<pb::PauseScheduleResponse>, Status> {
        missing("PauseSchedule")
    }
    async fn resume_schedule(
        &self,
        _: Request<pb::ResumeScheduleRequest>,
    ) -> Result<Response<pb::ResumeScheduleResponse>, Status> {
        missing("ResumeSchedule")
    }
    async fn backfill_schedule(
        &self,
        _: Request<pb::BackfillScheduleRequest>,
    ) -> Result<Response<pb::BackfillScheduleResponse>, Status> {
        missing("BackfillSchedule")
    }
    async fn delete_schedule(
        &self,
        _: Request<pb::DeleteScheduleRequest>,
    ) -> Result<Response<pb::DeleteScheduleResponse>, Status> {
        missing("DeleteSchedule")
    }
}
