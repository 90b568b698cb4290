//! What operators look at on the dashboard: a run with why each waiting task waits, runs with task counts, dead letters by group, worker load, queue throughput, schedules with their recent runs; and re-running a run.

use super::gauges::QueueSummary;
use super::{Engine, EngineError};
use crate::domain::blockers::{self, Blocker, Capacity};
use crate::domain::records::{Page, Run, RunDetail, RunFilter, Tenant};
use crate::domain::schedule::ScheduleView;
use crate::domain::state::TriggerSource;
use crate::engine::trigger::TriggerRequest;
use crate::store::dead_letters::DeadLetterFilter;
use crate::store::insight::{self, DeadLetterGroup, TaskCounts};
use crate::store::workers::{self, WorkerRow};
use crate::store::{dbtime, runs};
use std::collections::HashMap;
use uuid::Uuid;

/// How far back queue throughput counts dispatches.
pub const THROUGHPUT_WINDOW: chrono::TimeDelta = chrono::TimeDelta::seconds(60);
/// How many recent runs of each schedule are shown.
const RECENT_SCHEDULE_RUNS: u32 = 5;

/// A run as the dashboard shows it.
#[derive(Debug, Clone)]
pub struct RunInspection {
    pub detail: RunDetail,
    /// Parallel to `detail.tasks`: why each task that has not finished is not running.
    pub blockers: Vec<Option<Blocker>>,
    /// Sequence of the run's newest event: the live feed resumes after it.
    pub last_sequence: u64,
    /// Names of the workers that made the attempts, by worker id.
    pub worker_names: HashMap<String, String>,
}

/// A connected worker with the leases it holds.
#[derive(Debug, Clone)]
pub struct WorkerLoad {
    pub worker: WorkerRow,
    pub leases_held: u32,
}

impl WorkerLoad {
    pub fn free_slots(&self) -> u32 {
        self.worker.slots.saturating_sub(self.leases_held)
    }
}

/// A queue with the free slots of the workers serving it and its recent dispatches.
#[derive(Debug, Clone)]
pub struct QueueInsight {
    pub queue: QueueSummary,
    pub free_slots: u32,
    /// Tasks leased within [`THROUGHPUT_WINDOW`].
    pub dispatched: u64,
}

impl Engine {
    /// A run, its tasks and their attempts, and why each waiting task waits.
    pub async fn inspect_run(&self, tenant: &Tenant, id: Uuid) -> Result<RunInspection, EngineError> {
        let detail = self.get_run(tenant, id).await?;
        let conn = self.store.conn();
        let last_sequence = insight::last_sequence(conn, tenant, id).await?.unwrap_or(0);
        let capacity = capacity(&self.worker_loads(tenant).await?);
        let now = dbtime::read(conn, self.store.backend(), self.now()).await?;
        let blockers = blockers::blockers(&detail.run, &detail.tasks, &capacity, now);
        let worker_ids: Vec<Uuid> = detail
            .tasks
            .iter()
            .flat_map(|t| t.attempts.iter().filter_map(|a| a.worker_id.as_deref()))
            .filter_map(|w| Uuid::parse_str(w).ok())
            .collect();
        let worker_names =
            workers::names(conn, tenant, &worker_ids).await?.into_iter().map(|(id, n)| (id.to_string(), n)).collect();
        Ok(RunInspection { detail, blockers, last_sequence, worker_names })
    }

    /// A page of runs (as `list_runs`) with each run's task counts by state.
    pub async fn list_runs_with_counts(
        &self,
        tenant: &Tenant,
        filter: &RunFilter,
        page_size: u32,
        page_token: &str,
    ) -> Result<Page<(Run, TaskCounts), String>, EngineError> {
        let p = self.list_runs(tenant, filter, page_size, page_token).await?;
        let ids: Vec<Uuid> = p.items.iter().map(|r| r.id).collect();
        let mut counts = insight::task_counts(self.store.conn(), tenant, &ids).await?;
        let items = p
            .items
            .into_iter()
            .map(|r| {
                let c = counts.remove(&r.id).unwrap_or_default();
                (r, c)
            })
            .collect();
        Ok(Page { items, next: p.next })
    }

    /// Waiting dead letters matching `filter`, grouped by workflow, task and error type.
    pub async fn dead_letter_groups(
        &self,
        tenant: &Tenant,
        filter: &DeadLetterFilter,
    ) -> Result<Vec<DeadLetterGroup>, EngineError> {
        Ok(insight::dead_letter_groups(self.store.conn(), tenant, filter).await?)
    }

    /// Connected workers with the leases each holds (on any control plane).
    pub async fn worker_loads(&self, tenant: &Tenant) -> Result<Vec<WorkerLoad>, EngineError> {
        let held = insight::leases_by_worker(self.store.conn(), tenant).await?;
        Ok(self
            .connected_workers(tenant)
            .await?
            .into_iter()
            .map(|w| {
                let leases_held = held.get(&w.id.to_string()).copied().unwrap_or(0);
                WorkerLoad { worker: w, leases_held }
            })
            .collect())
    }

    /// Every queue of `tenant` (as `list_queues`) with free slots and recent dispatches.
    pub async fn queue_insights(&self, tenant: &Tenant) -> Result<Vec<QueueInsight>, EngineError> {
        let queues = self.list_queues(tenant).await?;
        let capacity = capacity(&self.worker_loads(tenant).await?);
        let since = self.now() - THROUGHPUT_WINDOW;
        let dispatched = insight::dispatched_since(self.store.conn(), tenant, since).await?;
        Ok(queues
            .into_iter()
            .map(|q| QueueInsight {
                free_slots: capacity.get(&q.task_type).map_or(0, |c| c.free_slots),
                dispatched: dispatched.get(&q.task_type).copied().unwrap_or(0),
                queue: q,
            })
            .collect())
    }

    /// Schedules (first page by name) with the newest runs each made.
    pub async fn schedules_with_runs(
        &self,
        tenant: &Tenant,
        page_size: u32,
        page_token: &str,
    ) -> Result<Page<(ScheduleView, Vec<Run>), String>, EngineError> {
        let p = self.list_schedules(tenant, None, page_size, page_token).await?;
        let mut items = Vec::with_capacity(p.items.len());
        for s in p.items {
            let filter = RunFilter { schedule_id: Some(s.schedule.id), ..RunFilter::default() };
            let recent = runs::list(self.store.conn(), tenant, &filter, None, u64::from(RECENT_SCHEDULE_RUNS)).await?;
            items.push((s, recent));
        }
        Ok(Page { items, next: p.next })
    }

    /// Starts a new run of the same workflow version with the same input, priority and
    /// concurrency key as run `id`. Returns the new run's id.
    pub async fn rerun(&self, tenant: &Tenant, id: Uuid) -> Result<Uuid, EngineError> {
        let old = self.get_run(tenant, id).await?.run;
        let input_json = self.run_input_text(&old).await?;
        let req = TriggerRequest {
            workflow_name: old.workflow_name,
            workflow_version: Some(old.workflow_version),
            input_json,
            idempotency_key: None,
            source: Some(TriggerSource::Api),
            priority: Some(old.priority),
            concurrency_key: old.concurrency_key,
            schedule: None,
            after_schedule_runs: false,
        };
        Ok(self.trigger_run(tenant, &req).await?.run.run.id)
    }

    /// Redrives every waiting dead letter of run `id`. Returns the redriven task ids.
    pub async fn redrive_run(&self, tenant: &Tenant, id: Uuid) -> Result<Vec<Uuid>, EngineError> {
        self.get_run(tenant, id).await?;
        let filter = DeadLetterFilter { run_id: Some(id), ..DeadLetterFilter::default() };
        let redriven = self.redrive(tenant, &[], &filter).await?;
        if redriven.is_empty() {
            return Err(EngineError::FailedPrecondition(format!("run {id} has no dead letter to redrive")));
        }
        Ok(redriven)
    }
}

/// Workers and free slots per task type.
fn capacity(loads: &[WorkerLoad]) -> HashMap<String, Capacity> {
    let mut out: HashMap<String, Capacity> = HashMap::new();
    for l in loads {
        for t in &l.worker.task_types {
            let c = out.entry(t.clone()).or_default();
            c.workers += 1;
            c.free_slots += l.free_slots();
        }
    }
    out
}
