//! RunService: trigger, read, and watch adapters.

use super::{convert, flow, tenant_of};
use crate::domain::records::RunFilter;
use crate::engine::runs::parse_run_id;
use crate::engine::trigger::TriggerRequest;
use crate::engine::{Engine, EngineError};
use braid_proto::v1 as pb;
use braid_proto::v1::run_service_server::RunService;
use futures::StreamExt;
use std::pin::Pin;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct RunApi {
    engine: Engine,
}

impl RunApi {
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }
}

fn trigger_request(r: pb::TriggerRunRequest) -> Result<TriggerRequest, EngineError> {
    Ok(TriggerRequest {
        priority: Some(flow::priority_from_proto("priority", r.priority)?),
        workflow_name: r.workflow_name,
        workflow_version: (r.workflow_version != 0).then_some(r.workflow_version),
        input_json: r.input_json,
        idempotency_key: (!r.idempotency_key.is_empty()).then_some(r.idempotency_key),
        concurrency_key: (!r.concurrency_key.is_empty()).then_some(r.concurrency_key),
        ..TriggerRequest::default()
    })
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::WatchRunResponse, Status>> + Send>>;

#[tonic::async_trait]
impl RunService for RunApi {
    async fn trigger_run(
        &self,
        req: Request<pb::TriggerRunRequest>,
    ) -> Result<Response<pb::TriggerRunResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let trigger = trigger_request(req.into_inner())?;
        let out = self.engine.trigger_run(&tenant, &trigger).await?;
        Ok(Response::new(pb::TriggerRunResponse { run: Some(convert::run_detail(&out.run)), created: out.created }))
    }

    async fn trigger_runs(
        &self,
        req: Request<pb::TriggerRunsRequest>,
    ) -> Result<Response<pb::TriggerRunsResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let triggers = req
            .into_inner()
            .runs
            .into_iter()
            .enumerate()
            .map(|(i, r)| trigger_request(r).map_err(|e| e.within(&format!("runs[{i}]"))))
            .collect::<Result<Vec<_>, _>>()?;
        let out = self.engine.trigger_runs(&tenant, &triggers).await?;
        let runs = out
            .into_iter()
            .map(|t| pb::TriggeredRun {
                run_id: t.run_id.to_string(),
                created: t.created,
                state: convert::run_state(t.state).into(),
            })
            .collect();
        Ok(Response::new(pb::TriggerRunsResponse { runs }))
    }

    async fn get_run(&self, req: Request<pb::GetRunRequest>) -> Result<Response<pb::GetRunResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let id = parse_run_id("run_id", &req.get_ref().run_id)?;
        let run = self.engine.get_run(&tenant, id).await?;
        Ok(Response::new(pb::GetRunResponse { run: Some(convert::run_detail(&run)) }))
    }

    async fn list_runs(&self, req: Request<pb::ListRunsRequest>) -> Result<Response<pb::ListRunsResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let r = req.into_inner();
        let mut states = Vec::with_capacity(r.states.len());
        for (i, s) in r.states.iter().enumerate() {
            let state = convert::run_state_from_proto(*s)
                .ok_or_else(|| EngineError::invalid(format!("states[{i}]"), format!("{s} is not a run state")))?;
            states.push(state);
        }
        let filter = RunFilter {
            workflow_name: (!r.workflow_name.is_empty()).then_some(r.workflow_name),
            states,
            created_after: convert::optional_timestamp("created_after", r.created_after)?,
            created_before: convert::optional_timestamp("created_before", r.created_before)?,
            schedule_id: match r.schedule_id.as_str() {
                "" => None,
                id => Some(Uuid::parse_str(id).map_err(|_| {
                    EngineError::invalid("schedule_id", format!("{id:?} is not a schedule id (a UUID)"))
                })?),
            },
            ..RunFilter::default()
        };
        let page = r.page.unwrap_or_default();
        let out = self.engine.list_runs(&tenant, &filter, page.page_size, &page.page_token).await?;
        Ok(Response::new(pb::ListRunsResponse {
            runs: out.items.iter().map(|r| convert::run(r, &[])).collect(),
            next_page_token: out.next.unwrap_or_default(),
        }))
    }

    async fn cancel_run(&self, req: Request<pb::CancelRunRequest>) -> Result<Response<pb::CancelRunResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let r = req.into_inner();
        let id = parse_run_id("run_id", &r.run_id)?;
        let out = self.engine.cancel_run(&tenant, id, &r.reason).await?;
        Ok(Response::new(pb::CancelRunResponse { run: Some(convert::run_detail(&out.run)) }))
    }

    type WatchRunStream = EventStream;

    async fn watch_run(&self, req: Request<pb::WatchRunRequest>) -> Result<Response<Self::WatchRunStream>, Status> {
        let tenant = tenant_of(&req)?;
        let r = req.into_inner();
        let run_id = parse_run_id("run_id", &r.run_id)?;
        let events = self.engine.watch_run(&tenant, run_id, r.after_sequence).await?;
        let stream = events.map(|e| match e {
            Ok(e) => Ok(pb::WatchRunResponse { event: Some(convert::run_event(&e)) }),
            Err(e) => Err(e.into()),
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
