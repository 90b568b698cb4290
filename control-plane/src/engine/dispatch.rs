//! Dispatch: turning queue deliveries into leases (one batched statement) and assignments with their inputs.

use super::{Engine, EngineError, rehydrate};
use crate::domain::records::Tenant;
use crate::store::events::NewEvent;
use crate::store::leases::{self, LeaseKey};
use crate::store::{StoreError, bulk, runs};
use crate::telemetry::spans;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// A lease on one attempt, with everything the worker needs to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub key: LeaseKey,
    pub run_id: Uuid,
    pub workflow_name: String,
    pub workflow_version: u32,
    pub task_name: String,
    pub task_type: String,
    pub max_attempts: u32,
    /// `{"input": run input, "deps": {"dependency": its output, …}}`
    pub input_json: String,
    /// When the attempt must be finished: the task's execution timeout after the lease (database clock).
    pub deadline: DateTime<Utc>,
    /// The W3C `traceparent` of this attempt's `dispatch` span (a child of the run's
    /// `trigger_run`); None when traces are off or the run has no trace context.
    pub trace_context: Option<String>,
}

impl Engine {
    /// Leases the ready, due tasks among `ids` to `worker_id` (one conditional statement),
    /// records their attempts, and returns their assignments. Tasks that are not ready
    /// (taken, cancelled, in backoff, duplicates) are left alone.
    pub async fn lease(&self, tenant: &Tenant, worker_id: &str, ids: &[Uuid]) -> Result<Vec<Assignment>, EngineError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now();
        let db_now = self.db_now(now);
        let backend = self.store.backend();
        let lease_id = Uuid::now_v7();
        let txn = self.store.begin().await?;
        // Lock order everywhere: runs (by id), then their tasks. The commit waits for the WAL
        // flush like every other: a lease lost in a crash would issue its attempt number and its
        // events' sequence numbers a second time.
        let locked = bulk::lock_runs_of_tasks(&txn, backend, tenant, ids).await?;
        let ttl = self.settings.lease_ttl;
        let leased = bulk::lease(&txn, tenant, ids, worker_id, lease_id, ttl, db_now).await?;
        if leased.is_empty() {
            return Ok(Vec::new());
        }
        let mut by_run: BTreeMap<Uuid, Vec<NewEvent>> = BTreeMap::new();
        for t in &leased {
            let attempt = u32::try_from(t.attempt).ok();
            by_run.entry(t.run_id).or_default().push(NewEvent::task(
                "task_leased",
                &t.name,
                attempt,
                json!({"worker_id": worker_id}),
            ));
        }
        let seq: HashMap<Uuid, i64> = locked.iter().map(|r| (r.id, r.next_event_seq)).collect();
        let mut numbered = Vec::with_capacity(by_run.len());
        let mut changes = Vec::with_capacity(by_run.len());
        for (run_id, log) in &by_run {
            let last = *seq.get(run_id).ok_or_else(|| StoreError::Corrupt(format!("run {run_id} was not locked")))?;
            numbered.push((*run_id, last + 1, log.as_slice()));
            changes.push(bulk::RunChange { id: *run_id, next_event_seq: last + log.len() as i64, end: None });
        }
        bulk::record_leases(&txn, tenant, &leased, worker_id, &changes, &numbered, db_now, now).await?;
        // Dependency outputs only for tasks that have dependencies.
        let mut dep_names: Vec<String> = Vec::new();
        let mut dep_runs: Vec<Uuid> = Vec::new();
        for t in leased.iter().filter(|t| t.depends_on != "[]") {
            let deps: Vec<String> = serde_json::from_str(&t.depends_on).map_err(crate::store::corrupt)?;
            dep_names.extend(deps);
            dep_runs.push(t.run_id);
        }
        dep_names.sort();
        dep_names.dedup();
        dep_runs.sort();
        dep_runs.dedup();
        let outputs = bulk::outputs_of(&txn, tenant, &dep_runs, &dep_names).await?;
        txn.commit().await.map_err(StoreError::from)?;
        // Schedule-to-start: from due (available_at) to this lease (updated_at), both database clock.
        for t in &leased {
            let waited = super::complete::seconds_between(t.available_at, t.updated_at);
            self.metrics.engine().schedule_to_start(&t.task_type, waited);
        }

        // The runs' trace contexts, read only when traces are on.
        let traced: HashMap<Uuid, String> = if spans::enabled() {
            locked.iter().filter_map(|r| Some((r.id, r.trace_context.clone()?))).collect()
        } else {
            HashMap::new()
        };
        let run_rows: Vec<runs::StoredRun> =
            locked.into_iter().filter(|r| by_run.contains_key(&r.id)).map(runs::to_record).collect::<Result<_, _>>()?;
        let runs: HashMap<Uuid, runs::StoredRun> = run_rows.into_iter().map(|r| (r.run.id, r)).collect();
        // Large payloads are read back (each once, verified) and sent as plain JSON.
        let outputs = rehydrate::decode_outputs(outputs)?;
        let refs = rehydrate::references(runs.values().map(|r| &r.run), &outputs);
        let fetched = if refs.is_empty() { HashMap::new() } else { self.fetch_all(refs).await };
        let mut unusable = Vec::new();
        let mut out = Vec::with_capacity(leased.len());
        for t in leased {
            let run = runs.get(&t.run_id).ok_or_else(|| StoreError::Corrupt(format!("task {} has no run", t.id)))?;
            let depends_on: Vec<String> = serde_json::from_str(&t.depends_on).map_err(crate::store::corrupt)?;
            let attempt = u32::try_from(t.attempt).map_err(crate::store::corrupt)?;
            let input = match rehydrate::input_text(&run.run, &t.name, &depends_on, &outputs, &fetched) {
                Ok(input) => input,
                Err(why) => {
                    unusable.push((LeaseKey { task_id: t.id, attempt, lease_id }, why));
                    continue;
                }
            };
            let timeout = chrono::Duration::milliseconds(t.timeout_ms);
            // Ends at once (the span is the lease); the worker's span is its child.
            let dispatch = spans::dispatch(traced.get(&t.run_id).map(String::as_str), t.id, &t.name, attempt);
            out.push(Assignment {
                key: LeaseKey { task_id: t.id, attempt, lease_id },
                run_id: t.run_id,
                workflow_name: run.run.workflow_name.clone(),
                workflow_version: run.run.workflow_version,
                task_name: t.name,
                task_type: t.task_type,
                max_attempts: u32::try_from(t.max_attempts).map_err(crate::store::corrupt)?,
                input_json: input,
                deadline: t.updated_at + timeout,
                trace_context: dispatch.and_then(|span| span.traceparent()),
            });
        }
        self.set_aside(tenant, unusable).await;
        Ok(out)
    }
}

/// A stored JSON document as a value (stored payloads were validated; a string fallback keeps bad data visible).
/// A task's input as its worker receives it: `{"input": run input, "deps": {"dependency": its
/// output (null if it has none), …}}`.
pub fn task_input<'a>(run_input: &str, deps: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> Value {
    let deps: Map<String, Value> =
        deps.into_iter().map(|(d, o)| (d.to_owned(), o.map_or(Value::Null, parse_or_string))).collect();
    json!({"input": parse_or_string(run_input), "deps": deps})
}

fn parse_or_string(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_owned()))
}

impl Engine {
    /// Hands leases back unused (a stream that started draining while they were taken): each
    /// task is ready again at once, and the unused attempt does not count against its budget.
    pub async fn release(&self, tenant: &Tenant, keys: &[LeaseKey]) -> Result<(), EngineError> {
        if keys.is_empty() {
            return Ok(());
        }
        let db_now = self.db_now(self.now());
        let txn = self.store.begin().await?;
        let ids: Vec<Uuid> = keys.iter().map(|k| k.task_id).collect();
        // Lock order everywhere: runs (by id), then their tasks.
        bulk::lock_runs_of_tasks(&txn, self.store.backend(), tenant, &ids).await?;
        for key in keys {
            if leases::release(&txn, tenant, *key, db_now).await? {
                leases::finish_attempt(&txn, tenant, *key, "released", None, None, db_now).await?;
            }
        }
        txn.commit().await.map_err(StoreError::from)?;
        Ok(())
    }
}
