//! AdminService: dead letters (list, redrive, purge), connected workers, queues.

use super::{convert, tenant_of};
use crate::engine::dead_letters::PurgeSelection;
use crate::engine::{Engine, EngineError};
use crate::store::dead_letters::DeadLetterFilter;
use braid_proto::v1 as pb;
use braid_proto::v1::admin_service_server::AdminService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct AdminApi {
    engine: Engine,
}

impl AdminApi {
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }
}

fn filter(f: Option<pb::DeadLetterFilter>) -> Result<DeadLetterFilter, EngineError> {
    let f = f.unwrap_or_default();
    let some = |s: String| (!s.is_empty()).then_some(s);
    Ok(DeadLetterFilter {
        workflow_name: some(f.workflow_name),
        task_name: some(f.task_name),
        error_type: some(f.error_type),
        created_after: convert::optional_timestamp("filter.created_after", f.created_after)?,
        created_before: convert::optional_timestamp("filter.created_before", f.created_before)?,
        run_id: None,
    })
}

fn ids(given: &[String]) -> Result<Vec<Uuid>, EngineError> {
    given
        .iter()
        .enumerate()
        .map(|(i, id)| {
            Uuid::parse_str(id)
                .map_err(|_| EngineError::invalid(format!("ids[{i}]"), format!("{id:?} is not a dead letter id")))
        })
        .collect()
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn list_dead_letters(
        &self,
        req: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let r = req.into_inner();
        let page = r.page.unwrap_or_default();
        let out = self.engine.list_dead_letters(&tenant, &filter(r.filter)?, page.page_size, &page.page_token).await?;
        Ok(Response::new(pb::ListDeadLettersResponse {
            dead_letters: out
                .items
                .iter()
                .map(|d| pb::DeadLetter {
                    id: d.id.to_string(),
                    task_id: d.task_id.to_string(),
                    run_id: d.run_id.to_string(),
                    workflow_name: d.workflow_name.clone(),
                    workflow_version: d.workflow_version,
                    task_name: d.task_name.clone(),
                    task_type: d.task_type.clone(),
                    last_error: Some(convert::task_error(&d.error)),
                    attempts: d.attempts,
                    created_at: Some(convert::timestamp(d.created_at)),
                })
                .collect(),
            next_page_token: out.next.unwrap_or_default(),
        }))
    }

    async fn redrive_dead_letters(
        &self,
        req: Request<pb::RedriveDeadLettersRequest>,
    ) -> Result<Response<pb::RedriveDeadLettersResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let r = req.into_inner();
        if !r.ids.is_empty() && r.filter.is_some() {
            return Err(EngineError::invalid("ids", "give either ids or a filter, not both").into());
        }
        if r.ids.is_empty() && r.filter.is_none() {
            return Err(EngineError::invalid(
                "filter",
                "give ids, or a filter (an empty filter redrives every dead letter)",
            )
            .into());
        }
        let task_ids = self.engine.redrive(&tenant, &ids(&r.ids)?, &filter(r.filter)?).await?;
        Ok(Response::new(pb::RedriveDeadLettersResponse {
            redriven: u32::try_from(task_ids.len()).unwrap_or(u32::MAX),
            task_ids: task_ids.iter().map(ToString::to_string).collect(),
        }))
    }

    async fn list_workers(
        &self,
        req: Request<pb::ListWorkersRequest>,
    ) -> Result<Response<pb::ListWorkersResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let workers = self.engine.connected_workers(&tenant).await?;
        Ok(Response::new(pb::ListWorkersResponse {
            workers: workers
                .into_iter()
                .map(|w| pb::WorkerInfo {
                    // Known where the stream is held; a stream on another control plane reports 0.
                    free_slots: self.engine.registry().free_slots(&w.id.to_string()).unwrap_or(0),
                    id: w.id.to_string(),
                    name: w.name,
                    task_types: w.task_types,
                    slots: w.slots,
                    labels: w.labels.into_iter().collect(),
                    sdk_language: w.sdk_language,
                    sdk_version: w.sdk_version,
                    draining: w.draining,
                    connected_at: Some(convert::timestamp(w.connected_at)),
                    last_heartbeat_at: Some(convert::timestamp(w.last_heartbeat_at)),
                })
                .collect(),
            next_page_token: String::new(),
        }))
    }

    async fn purge_dead_letters(
        &self,
        req: Request<pb::PurgeDeadLettersRequest>,
    ) -> Result<Response<pb::PurgeDeadLettersResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let r = req.into_inner();
        let selection = match (r.ids.is_empty(), r.filter) {
            (false, Some(_)) => return Err(EngineError::invalid("ids", "give either ids or a filter, not both").into()),
            (true, None) => {
                return Err(EngineError::invalid(
                    "filter",
                    "give ids, or a filter (an empty filter purges every dead letter)",
                )
                .into());
            }
            (true, Some(f)) => PurgeSelection::Filter(filter(Some(f))?),
            (false, None) => PurgeSelection::Ids(ids(&r.ids)?),
        };
        let purged = self.engine.purge_dead_letters(&tenant, &selection).await?;
        Ok(Response::new(pb::PurgeDeadLettersResponse { purged: u32::try_from(purged).unwrap_or(u32::MAX) }))
    }

    async fn list_queues(
        &self,
        req: Request<pb::ListQueuesRequest>,
    ) -> Result<Response<pb::ListQueuesResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let queues = self.engine.list_queues(&tenant).await?;
        Ok(Response::new(pb::ListQueuesResponse {
            queues: queues
                .into_iter()
                .map(|q| pb::QueueInfo {
                    task_type: q.task_type,
                    ready: q.ready,
                    leased: q.leased,
                    lag: Some(convert::duration(q.lag)),
                    workers: q.workers,
                })
                .collect(),
        }))
    }
}
