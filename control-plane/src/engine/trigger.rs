//! Triggering: creating a run and all its tasks in one transaction, with idempotency keys.

use super::{Engine, EngineError};
use crate::domain::records::{Run, RunDetail, Task, Tenant};
use crate::domain::state::{RunState, TaskState, TriggerSource};
use crate::domain::validate::{
    ValidWorkflow, ValidationError, validate, validate_idempotency_key, validate_input_json,
};
use crate::store::events::NewEvent;
use crate::store::{StoreError, dbtime, events, runs, tasks};
use chrono::SubsecRound;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A request to start a run.
#[derive(Debug, Clone, Default)]
pub struct TriggerRequest {
    pub workflow_name: String,
    /// None for the latest version.
    pub workflow_version: Option<u32>,
    /// A JSON document; empty means `{}`.
    pub input_json: String,
    pub idempotency_key: Option<String>,
    pub source: Option<TriggerSource>,
}

/// What TriggerRun did.
#[derive(Debug, Clone)]
pub struct TriggerOutcome {
    pub run: RunDetail,
    /// False when the idempotency key matched an existing run, which is returned.
    pub created: bool,
}

/// Hash of the input's canonical form (keys sorted, no whitespace), so that the
/// same document written differently counts as the same input.
fn input_hash(input: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(input.to_string().as_bytes()))
}

impl Engine {
    /// Creates a run of a workflow version with all its tasks, or returns the run
    /// that already holds the request's idempotency key.
    pub async fn trigger_run(&self, tenant: &Tenant, req: &TriggerRequest) -> Result<TriggerOutcome, EngineError> {
        let invalid = |e: ValidationError| EngineError::InvalidArgument { field: e.path, reason: e.reason };
        let key = validate_idempotency_key(req.idempotency_key.as_deref().unwrap_or_default()).map_err(invalid)?;
        let input_value = validate_input_json(&req.input_json).map_err(invalid)?;
        let input = if req.input_json.trim().is_empty() { "{}".to_owned() } else { req.input_json.clone() };
        let hash = input_hash(&input_value);

        if let Some(key) = key {
            let found = runs::by_idempotency_key(self.store.conn(), tenant, &req.workflow_name, key).await?;
            if let Some(existing) = found {
                return self.existing(tenant, existing, &hash, key, req.workflow_version).await;
            }
        }
        let wf = self.get_workflow(tenant, &req.workflow_name, req.workflow_version).await?;
        let valid = validate(&wf.definition).map_err(|errors| {
            StoreError::Corrupt(format!(
                "stored workflow {} v{} no longer validates: {}",
                wf.name,
                wf.version,
                errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
            ))
        })?;

        let run_id = Uuid::now_v7();
        let source = req.source.unwrap_or(TriggerSource::Api);
        let txn = self.store.begin().await?;
        // Stamped with the database clock: leases compare `available_at` with it.
        let now = dbtime::read(&txn, self.store.backend(), self.now()).await?.trunc_subsecs(6);
        let new_run = runs::NewRun {
            id: run_id,
            workflow_name: &wf.name,
            workflow_version: wf.version,
            state: RunState::Running,
            input: &input,
            idempotency_key: key,
            input_hash: &hash,
            trigger_source: source,
            now,
        };
        if !runs::insert(&txn, tenant, &new_run).await? {
            // A concurrent trigger with the same key committed first.
            drop(txn);
            let key = key.unwrap_or_default();
            let existing =
                runs::by_idempotency_key(self.store.conn(), tenant, &req.workflow_name, key).await?.ok_or_else(
                    || StoreError::Corrupt(format!("idempotency key {key:?} conflicted but no run holds it")),
                )?;
            return self.existing(tenant, existing, &hash, key, req.workflow_version).await;
        }
        let tasks = new_tasks(&valid, run_id, now);
        let rows: Vec<tasks::NewTask<'_>> = tasks
            .iter()
            .zip(&valid.tasks)
            .map(|(t, r)| tasks::NewTask {
                id: t.id,
                run_id,
                name: &t.name,
                task_type: &t.task_type,
                state: t.state,
                depends_on: &t.depends_on,
                retry: &r.retry,
                timeout_ms: i64::try_from(r.timeout.as_millis()).unwrap_or(i64::MAX),
                now,
            })
            .collect();
        tasks::insert_many(&txn, tenant, &rows).await?;
        let mut log = vec![NewEvent::run(
            "run_created",
            json!({"workflow": wf.name, "version": wf.version, "source": source.as_str()}),
        )];
        log.extend(
            tasks
                .iter()
                .filter(|t| t.state == TaskState::Ready)
                .map(|t| NewEvent::task("task_ready", &t.name, None, json!({}))),
        );
        events::append(&txn, tenant, run_id, &log, now).await?;
        txn.commit().await.map_err(StoreError::from)?;
        let ready: Vec<(String, Uuid)> =
            tasks.iter().filter(|t| t.state == TaskState::Ready).map(|t| (t.task_type.clone(), t.id)).collect();
        self.publish(tenant, &ready).await;

        let run = Run {
            id: run_id,
            workflow_name: wf.name.clone(),
            workflow_version: wf.version,
            state: RunState::Running,
            input,
            output: None,
            idempotency_key: key.map(str::to_owned),
            trigger_source: source,
            reason: None,
            created_at: now,
            started_at: Some(now),
            finished_at: None,
        };
        Ok(TriggerOutcome { run: RunDetail { run, tasks }, created: true })
    }

    /// The answer to a trigger whose idempotency key is already held by `existing`.
    async fn existing(
        &self,
        tenant: &Tenant,
        existing: runs::StoredRun,
        hash: &str,
        key: &str,
        version: Option<u32>,
    ) -> Result<TriggerOutcome, EngineError> {
        if let Some(v) = version.filter(|v| *v != existing.run.workflow_version) {
            return Err(EngineError::AlreadyExists(format!(
                "idempotency key {key:?} is already used by run {} of version {}, not version {v}",
                existing.run.id, existing.run.workflow_version
            )));
        }
        if existing.input_hash.as_deref() != Some(hash) {
            return Err(EngineError::AlreadyExists(format!(
                "idempotency key {key:?} is already used by run {} of workflow {:?} with a different input",
                existing.run.id, existing.run.workflow_name
            )));
        }
        let run = self.get_run(tenant, existing.run.id).await?;
        Ok(TriggerOutcome { run, created: false })
    }
}

/// The tasks of a new run: those without dependencies are ready, the rest pending.
fn new_tasks(valid: &ValidWorkflow, run_id: Uuid, now: chrono::DateTime<chrono::Utc>) -> Vec<Task> {
    valid
        .tasks
        .iter()
        .map(|t| Task {
            id: Uuid::now_v7(),
            run_id,
            name: t.name.clone(),
            task_type: t.task_type.clone(),
            state: if t.depends_on.is_empty() { TaskState::Ready } else { TaskState::Pending },
            depends_on: t.depends_on.clone(),
            attempt: 0,
            max_attempts: t.retry.max_attempts,
            output: None,
            last_error: None,
            available_at: now,
            created_at: now,
            finished_at: None,
            attempts: Vec::new(),
        })
        .collect()
}
