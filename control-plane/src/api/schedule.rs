//! ScheduleService: cron schedule adapters (proto to a schedule spec, one engine call, back).

use super::{convert, flow, tenant_of};
use crate::domain::flow::OverlapPolicy;
use crate::domain::schedule::{ScheduleSpec, ScheduleView};
use crate::engine::schedules::parse_schedule_id;
use crate::engine::{Engine, EngineError};
use braid_proto::v1 as pb;
use braid_proto::v1::schedule_service_server::ScheduleService;
use std::time::Duration;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone)]
pub struct ScheduleApi {
    engine: Engine,
}

impl ScheduleApi {
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }
}

fn window(d: Option<prost_types::Duration>) -> Result<Option<Duration>, EngineError> {
    d.map(|d| match (u64::try_from(d.seconds), u32::try_from(d.nanos)) {
        (Ok(s), Ok(n)) if n < 1_000_000_000 => Ok(Duration::new(s, n)),
        _ => Err(EngineError::invalid("schedule.catchup_window", "must be a non-negative duration")),
    })
    .transpose()
}

fn spec(s: Option<pb::Schedule>) -> Result<(String, ScheduleSpec), EngineError> {
    let s = s.ok_or_else(|| EngineError::invalid("schedule", "is required"))?;
    let spec = ScheduleSpec {
        overlap: flow::overlap_policy_from_proto("schedule.overlap_policy", s.overlap_policy, OverlapPolicy::Skip)?,
        catchup: flow::catchup_policy_from_proto("schedule.catchup_policy", s.catchup_policy)?,
        priority: flow::priority_from_proto("schedule.priority", s.priority)?,
        start_at: convert::optional_timestamp("schedule.start_at", s.start_at)?,
        end_at: convert::optional_timestamp("schedule.end_at", s.end_at)?,
        catchup_window: window(s.catchup_window)?,
        name: s.name,
        workflow_name: s.workflow_name,
        cron: s.cron,
        timezone: s.timezone,
        input_json: s.input_json,
        paused: s.paused,
    };
    Ok((s.id, spec))
}

fn schedule(v: &ScheduleView) -> pb::Schedule {
    let s = &v.schedule;
    pb::Schedule {
        id: s.id.to_string(),
        name: s.name.clone(),
        workflow_name: s.workflow_name.clone(),
        cron: s.cron.clone(),
        timezone: s.timezone.clone(),
        input_json: s.input_json.clone(),
        overlap_policy: flow::overlap_policy(s.overlap).into(),
        paused: s.paused,
        start_at: s.start_at.map(convert::timestamp),
        end_at: s.end_at.map(convert::timestamp),
        next_fire_times: v.next_fire_times.iter().copied().map(convert::timestamp).collect(),
        created_at: Some(convert::timestamp(s.created_at)),
        catchup_window: Some(convert::duration(s.catchup_window)),
        catchup_policy: flow::catchup_policy(s.catchup).into(),
        last_tick: s.last_tick.map(convert::timestamp),
        priority: flow::priority(s.priority).into(),
    }
}

#[tonic::async_trait]
impl ScheduleService for ScheduleApi {
    async fn create_schedule(
        &self,
        req: Request<pb::CreateScheduleRequest>,
    ) -> Result<Response<pb::CreateScheduleResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let (_, spec) = spec(req.into_inner().schedule)?;
        let v = self.engine.create_schedule(&tenant, &spec).await?;
        Ok(Response::new(pb::CreateScheduleResponse { schedule: Some(schedule(&v)) }))
    }

    async fn get_schedule(
        &self,
        req: Request<pb::GetScheduleRequest>,
    ) -> Result<Response<pb::GetScheduleResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let id = parse_schedule_id("id", &req.get_ref().id)?;
        let v = self.engine.get_schedule(&tenant, id).await?;
        Ok(Response::new(pb::GetScheduleResponse { schedule: Some(schedule(&v)) }))
    }

    async fn list_schedules(
        &self,
        req: Request<pb::ListSchedulesRequest>,
    ) -> Result<Response<pb::ListSchedulesResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let r = req.into_inner();
        let page = r.page.unwrap_or_default();
        let workflow = (!r.workflow_name.is_empty()).then_some(r.workflow_name.as_str());
        let out = self.engine.list_schedules(&tenant, workflow, page.page_size, &page.page_token).await?;
        Ok(Response::new(pb::ListSchedulesResponse {
            schedules: out.items.iter().map(schedule).collect(),
            next_page_token: out.next.unwrap_or_default(),
        }))
    }

    async fn update_schedule(
        &self,
        req: Request<pb::UpdateScheduleRequest>,
    ) -> Result<Response<pb::UpdateScheduleResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let (id, spec) = spec(req.into_inner().schedule)?;
        let id = parse_schedule_id("schedule.id", &id)?;
        let v = self.engine.update_schedule(&tenant, id, &spec).await?;
        Ok(Response::new(pb::UpdateScheduleResponse { schedule: Some(schedule(&v)) }))
    }

    async fn pause_schedule(
        &self,
        req: Request<pb::PauseScheduleRequest>,
    ) -> Result<Response<pb::PauseScheduleResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let id = parse_schedule_id("id", &req.get_ref().id)?;
        let v = self.engine.set_schedule_paused(&tenant, id, true).await?;
        Ok(Response::new(pb::PauseScheduleResponse { schedule: Some(schedule(&v)) }))
    }

    async fn resume_schedule(
        &self,
        req: Request<pb::ResumeScheduleRequest>,
    ) -> Result<Response<pb::ResumeScheduleResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let id = parse_schedule_id("id", &req.get_ref().id)?;
        let v = self.engine.set_schedule_paused(&tenant, id, false).await?;
        Ok(Response::new(pb::ResumeScheduleResponse { schedule: Some(schedule(&v)) }))
    }

    async fn backfill_schedule(
        &self,
        req: Request<pb::BackfillScheduleRequest>,
    ) -> Result<Response<pb::BackfillScheduleResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let r = req.into_inner();
        let id = parse_schedule_id("id", &r.id)?;
        let start = convert::optional_timestamp("start", r.start)?
            .ok_or_else(|| EngineError::invalid("start", "is required"))?;
        let end =
            convert::optional_timestamp("end", r.end)?.ok_or_else(|| EngineError::invalid("end", "is required"))?;
        let overlap = flow::overlap_policy_from_proto("overlap_policy", r.overlap_policy, OverlapPolicy::AllowAll)?;
        let out = self.engine.backfill_schedule(&tenant, id, start, end, overlap).await?;
        Ok(Response::new(pb::BackfillScheduleResponse {
            ticks: out.ticks,
            created: out.created,
            run_ids: out.run_ids.iter().map(ToString::to_string).collect(),
        }))
    }

    async fn delete_schedule(
        &self,
        req: Request<pb::DeleteScheduleRequest>,
    ) -> Result<Response<pb::DeleteScheduleResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let id = parse_schedule_id("id", &req.get_ref().id)?;
        self.engine.delete_schedule(&tenant, id).await?;
        Ok(Response::new(pb::DeleteScheduleResponse {}))
    }
}
