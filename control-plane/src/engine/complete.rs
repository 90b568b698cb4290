//! Completion: fenced results, retries with backoff, dead letters, and moving the DAG forward.

use super::{Engine, EngineError};
use crate::domain::limits::MAX_INPUT_BYTES;
use crate::domain::records::{TaskError, Tenant};
use crate::domain::retry::RetryPolicy;
use crate::domain::state::{RunState, TaskState};
use crate::store::entity::task;
use crate::store::events::NewEvent;
use crate::store::leases::{self, LeaseKey, Transition};
use crate::store::{StoreError, corrupt, dead_letters, events, progress};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};

/// Largest task output accepted, in bytes (the same bound as run inputs).
pub const MAX_OUTPUT_BYTES: usize = MAX_INPUT_BYTES;

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded {
        output_json: String,
    },
    Failed(TaskError),
    /// The lease expired without a result (the reaper's verdict).
    LeaseExpired,
}

/// What happened to a reported outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// The lease is not current (re-leased, cancelled, already finished): nothing changed.
    Stale {
        reason: String,
    },
}

/// Longest error message kept, in bytes; longer ones are cut.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 16 * 1024;

/// An error as kept: message bounded, details a JSON document within the output bound.
fn bounded(mut e: TaskError) -> TaskError {
    if e.message.len() > MAX_ERROR_MESSAGE_BYTES {
        let mut cut = MAX_ERROR_MESSAGE_BYTES;
        while !e.message.is_char_boundary(cut) {
            cut -= 1;
        }
        e.message.truncate(cut);
        e.message.push_str("… (truncated)");
    }
    if let Some(d) = &e.details {
        let valid = d.len() <= MAX_OUTPUT_BYTES && serde_json::from_str::<serde_json::Value>(d).is_ok();
        if !valid {
            e.details = Some(
                json!({"dropped": format!("details_json was not a JSON document of at most {MAX_OUTPUT_BYTES} bytes")})
                    .to_string(),
            );
        }
    }
    e.kind.truncate(crate::domain::limits::MAX_NAME_LEN);
    e
}

/// An output the engine refuses becomes a failure that retrying cannot fix.
fn checked(outcome: Outcome) -> Outcome {
    let outcome = match outcome {
        Outcome::Failed(e) => return Outcome::Failed(bounded(e)),
        other => other,
    };
    let Outcome::Succeeded { output_json } = &outcome else { return outcome };
    let problem = if output_json.len() > MAX_OUTPUT_BYTES {
        Some(format!("output_json is {} bytes; the limit is {MAX_OUTPUT_BYTES}", output_json.len()))
    } else {
        serde_json::from_str::<serde_json::Value>(output_json).err().map(|e| format!("output_json is not JSON: {e}"))
    };
    match problem {
        None => outcome,
        Some(message) => {
            Outcome::Failed(TaskError { message, kind: "invalid_output".into(), retryable: false, details: None })
        }
    }
}

fn error_json(e: &TaskError) -> String {
    serde_json::to_string(e).unwrap_or_else(|_| "{}".into())
}

impl Engine {
    /// Applies the outcome of the attempt `key`, if that lease is still current (fencing).
    pub async fn complete(&self, tenant: &Tenant, key: LeaseKey, outcome: Outcome) -> Result<Verdict, EngineError> {
        let outcome = checked(outcome);
        let now = self.now();
        let db_now = self.db_now(now);
        let backend = self.store.backend();
        let txn = self.store.begin().await?;
        // Lock order everywhere: run, then its tasks.
        let Some(found) = leases::current(&txn, tenant, &[key.task_id]).await?.into_iter().next() else {
            return Ok(Verdict::Stale { reason: format!("no task {}", key.task_id) });
        };
        let run = progress::lock_run(&txn, backend, tenant, found.run_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("task {} has no run", found.run_id)))?;
        let t = leases::lock(&txn, backend, tenant, key.task_id).await?.ok_or_else(|| corrupt("task vanished"))?;
        let holds = t.attempt == i32::try_from(key.attempt).unwrap_or(-1) && t.lease_id == Some(key.lease_id);
        if holds && t.state == TaskState::Cancelled.as_str() {
            // Recorded on the attempt, but it changes nothing: the run was cancelled.
            let (err, out) = match &outcome {
                Outcome::Succeeded { output_json } => (None, Some(output_json.clone())),
                Outcome::Failed(e) => (Some(error_json(e)), None),
                Outcome::LeaseExpired => (None, None),
            };
            leases::record_late_result(&txn, tenant, key, err, out).await?;
            txn.commit().await.map_err(StoreError::from)?;
            return Ok(Verdict::Stale {
                reason: "the task was cancelled; the result is recorded but changes nothing".into(),
            });
        }
        let policy: RetryPolicy = serde_json::from_str(&t.retry_policy).map_err(corrupt)?;
        let (transition, attempt_outcome, final_error) = match &outcome {
            Outcome::Succeeded { output_json } => {
                (Transition::Succeeded { output: output_json.clone() }, "succeeded", None)
            }
            Outcome::Failed(e) => self.after_failure(&policy, key.attempt, t.max_attempts, e.clone(), "failed"),
            Outcome::LeaseExpired => {
                let e = TaskError {
                    message: format!("lease of attempt {} expired without a result", key.attempt),
                    kind: "lease_expired".into(),
                    retryable: true,
                    details: None,
                };
                self.after_failure(&policy, key.attempt, t.max_attempts, e, "lease_expired")
            }
        };
        let expired_only = outcome == Outcome::LeaseExpired;
        if !leases::transition(&txn, tenant, key, &transition, expired_only, db_now).await? {
            // The same result sent again (its ack was lost) is accepted again, changing nothing.
            let recorded = leases::attempt_outcome(&txn, tenant, key).await?;
            let repeat = match (&outcome, recorded.as_deref()) {
                (Outcome::Succeeded { .. }, Some("succeeded")) | (Outcome::Failed(_), Some("failed")) => true,
                (Outcome::Succeeded { .. } | Outcome::Failed(_) | Outcome::LeaseExpired, _) => false,
            };
            if repeat {
                return Ok(Verdict::Accepted);
            }
            return Ok(Verdict::Stale {
                reason: format!(
                    "lease {} of attempt {} is not current: the task is {} at attempt {}",
                    key.lease_id, key.attempt, t.state, t.attempt
                ),
            });
        }
        let (err_json, output) = match (&transition, &final_error) {
            (Transition::Succeeded { output }, _) => (None, Some(output.clone())),
            (Transition::Retry { error_json, .. } | Transition::Failed { error_json }, _) => {
                (Some(error_json.clone()), None)
            }
        };
        leases::finish_attempt(&txn, tenant, key, attempt_outcome, err_json, output, db_now).await?;

        let mut log = Vec::new();
        let mut ready = Vec::new();
        // The run's tasks as this transaction sees them (this task already moved), read once
        // and kept up to date in memory with what the rest of this completion writes.
        let mut all = match transition {
            Transition::Retry { .. } => Vec::new(),
            Transition::Succeeded { .. } | Transition::Failed { .. } => {
                progress::tasks_of_run(&txn, tenant, run.id).await?
            }
        };
        match &transition {
            Transition::Succeeded { .. } => {
                log.push(NewEvent::task("task_succeeded", &t.name, Some(key.attempt), json!({})));
                ready = self.release_dependents(&txn, &mut all, &t, &mut log, db_now).await?;
            }
            Transition::Retry { delay, error_json } => log.push(NewEvent::task(
                "task_retry_scheduled",
                &t.name,
                Some(key.attempt),
                json!({"delay_ms": u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "error": serde_json::from_str::<serde_json::Value>(error_json).unwrap_or_default()}),
            )),
            Transition::Failed { error_json } => {
                let e = final_error.as_ref().ok_or_else(|| corrupt("failure without error"))?;
                log.push(NewEvent::task("task_failed", &t.name, Some(key.attempt), json!({"error": e})));
                dead_letters::insert(
                    &txn,
                    tenant,
                    &dead_letters::NewDeadLetter {
                        task_id: t.id,
                        run_id: run.id,
                        workflow_name: &run.workflow_name,
                        workflow_version: run.workflow_version,
                        task_name: &t.name,
                        task_type: &t.task_type,
                        error_json,
                        error_type: &e.kind,
                        attempts: t.attempt,
                        now,
                    },
                )
                .await?;
                skip_downstream(&txn, &mut all, &t.name, &mut log, db_now).await?;
            }
        }
        if !matches!(transition, Transition::Retry { .. }) {
            self.maybe_finish_run(&txn, tenant, &run, &all, &mut log, db_now).await?;
        }
        events::append(&txn, tenant, run.id, &log, now).await?;
        txn.commit().await.map_err(StoreError::from)?;
        self.publish(tenant, &ready).await;
        Ok(Verdict::Accepted)
    }

    /// The transition after a failed attempt: a retry with backoff while attempts and
    /// retryability allow, else failure for good.
    fn after_failure(
        &self,
        policy: &RetryPolicy,
        attempt: u32,
        max_attempts: i32,
        e: TaskError,
        attempt_outcome: &'static str,
    ) -> (Transition, &'static str, Option<TaskError>) {
        let budget = u32::try_from(max_attempts).unwrap_or(0);
        if e.retryable && attempt < budget {
            let delay = policy.backoff(attempt, rand_unit());
            (Transition::Retry { error_json: error_json(&e), delay }, attempt_outcome, Some(e))
        } else {
            (Transition::Failed { error_json: error_json(&e) }, attempt_outcome, Some(e))
        }
    }

    /// Dependents of `done` whose dependencies have now all succeeded become ready.
    async fn release_dependents<C: sea_orm::ConnectionTrait>(
        &self,
        c: &C,
        all: &mut [task::Model],
        done: &task::Model,
        log: &mut Vec<NewEvent>,
        now: crate::store::dbtime::DbNow,
    ) -> Result<Vec<(String, uuid::Uuid)>, EngineError> {
        let mut dependents = Vec::new();
        let mut now_ready = Vec::new();
        for t in all.iter_mut().filter(|t| t.state == TaskState::Pending.as_str()) {
            let deps: Vec<String> = serde_json::from_str(&t.depends_on).map_err(corrupt)?;
            if deps.contains(&done.name) {
                dependents.push(t.id);
                t.pending_deps -= 1;
                if t.pending_deps <= 0 {
                    t.state = TaskState::Ready.as_str().to_owned();
                    now_ready.push((t.task_type.clone(), t.id, t.name.clone()));
                }
            }
        }
        progress::decrement_pending(c, &dependents, now).await?;
        let ids: Vec<_> = now_ready.iter().map(|(_, id, _)| *id).collect();
        progress::set_task_state(c, &ids, &[TaskState::Pending], TaskState::Ready, now).await?;
        log.extend(now_ready.iter().map(|(_, _, name)| NewEvent::task("task_ready", name, None, json!({}))));
        Ok(now_ready.into_iter().map(|(task_type, id, _)| (task_type, id)).collect())
    }

    /// Ends the run when no task can move any more: succeeded if every task did, else failed.
    async fn maybe_finish_run<C: sea_orm::ConnectionTrait>(
        &self,
        c: &C,
        tenant: &Tenant,
        run: &crate::store::entity::run::Model,
        all: &[task::Model],
        log: &mut Vec<NewEvent>,
        now: crate::store::dbtime::DbNow,
    ) -> Result<(), EngineError> {
        let states: Vec<TaskState> = all.iter().map(|t| t.state.parse().map_err(corrupt)).collect::<Result<_, _>>()?;
        let open = states.iter().any(|s| match s {
            TaskState::Pending | TaskState::Ready | TaskState::Leased => true,
            TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled | TaskState::Skipped => false,
        });
        if open {
            return Ok(());
        }
        if states.iter().all(|s| *s == TaskState::Succeeded) {
            let output = sink_outputs(all)?;
            if progress::set_run_state(
                c,
                tenant,
                run.id,
                &[RunState::Running],
                RunState::Succeeded,
                Some(output),
                None,
                now,
            )
            .await?
            {
                log.push(NewEvent::run("run_succeeded", json!({})));
            }
        } else {
            let failed: Vec<&str> =
                all.iter().filter(|t| t.state == TaskState::Failed.as_str()).map(|t| t.name.as_str()).collect();
            let reason = format!("task(s) failed: {}", failed.join(", "));
            if progress::set_run_state(
                c,
                tenant,
                run.id,
                &[RunState::Running],
                RunState::Failed,
                None,
                Some(reason.clone()),
                now,
            )
            .await?
            {
                log.push(NewEvent::run("run_failed", json!({"reason": reason})));
            }
        }
        Ok(())
    }
}

/// Pending tasks downstream of `failed` (transitively) are skipped: they can never run.
async fn skip_downstream<C: sea_orm::ConnectionTrait>(
    c: &C,
    all: &mut [task::Model],
    failed: &str,
    log: &mut Vec<NewEvent>,
    now: crate::store::dbtime::DbNow,
) -> Result<(), EngineError> {
    let mut blocked: HashSet<String> = HashSet::from([failed.to_owned()]);
    let mut skip = Vec::new();
    loop {
        let before = skip.len();
        for t in all.iter_mut().filter(|t| t.state == TaskState::Pending.as_str()) {
            let deps: Vec<String> = serde_json::from_str(&t.depends_on).map_err(corrupt)?;
            if deps.iter().any(|d| blocked.contains(d)) {
                blocked.insert(t.name.clone());
                t.state = TaskState::Skipped.as_str().to_owned();
                skip.push((t.id, t.name.clone()));
            }
        }
        if skip.len() == before {
            break;
        }
    }
    let ids: Vec<_> = skip.iter().map(|(id, _)| *id).collect();
    progress::set_task_state(c, &ids, &[TaskState::Pending], TaskState::Skipped, now).await?;
    log.extend(skip.iter().map(|(_, name)| NewEvent::task("task_skipped", name, None, json!({"because": failed}))));
    Ok(())
}

/// The run's output: `{"task": output}` for every task nothing depends on.
fn sink_outputs(all: &[task::Model]) -> Result<String, EngineError> {
    let mut depended: HashSet<String> = HashSet::new();
    for t in all {
        let deps: Vec<String> = serde_json::from_str(&t.depends_on).map_err(corrupt)?;
        depended.extend(deps);
    }
    let mut out = BTreeMap::new();
    for t in all.iter().filter(|t| !depended.contains(&t.name)) {
        let v = t.output.as_deref().map_or(serde_json::Value::Null, |o| {
            serde_json::from_str(o).unwrap_or_else(|_| serde_json::Value::String(o.to_owned()))
        });
        out.insert(t.name.clone(), v);
    }
    Ok(serde_json::to_string(&out).unwrap_or_else(|_| "{}".into()))
}

/// A uniform draw from [0, 1) for backoff jitter.
fn rand_unit() -> f64 {
    // The low bits of a v4 UUID are uniformly random; 53 of them make an f64 in [0, 1).
    let bits = uuid::Uuid::new_v4().as_u128() as u64 >> 11;
    bits as f64 / (1u64 << 53) as f64
}
