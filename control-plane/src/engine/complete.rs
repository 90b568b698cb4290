//! Completion: fenced results, retries with backoff, dead letters, and moving the DAG forward.

use super::admission::{Admission, EndedRun};
use super::{Engine, EngineError};
use crate::domain::flow::Priority;
use crate::domain::payload::{bounded_error, output_problem_within};
use crate::domain::payload_ref::{Stored, assembled_size};
use crate::domain::records::{TaskError, Tenant};
use crate::domain::retry::RetryPolicy;
use crate::domain::state::{RunState, TaskState};
use crate::store::entity::{run, task};
use crate::store::events::NewEvent;
use crate::store::leases::{self, LeaseKey, Transition};
use crate::store::{StoreError, bulk, corrupt, dead_letters, progress};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;
use uuid::Uuid;

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

/// An output the engine refuses (larger than `max` bytes, or not JSON) becomes a failure that
/// retrying cannot fix.
fn checked(outcome: Outcome, max: usize) -> Outcome {
    let outcome = match outcome {
        Outcome::Failed(e) => return Outcome::Failed(bounded_error(e)),
        other => other,
    };
    let Outcome::Succeeded { output_json } = &outcome else { return outcome };
    let problem = output_problem_within(output_json, max);
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

/// One reported outcome of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub key: LeaseKey,
    pub outcome: Outcome,
}

/// A locked run with its tasks as this transaction sees them, kept up to date in memory
/// with what the batch writes, and the events it appends.
struct RunWork {
    run: run::Model,
    tasks: Vec<task::Model>,
    log: Vec<NewEvent>,
    /// A task of the run ended for good (it may be finished now).
    settled: bool,
}

/// The writes of one batch, gathered while its outcomes are decided in memory.
#[derive(Default)]
struct Writes {
    endings: Vec<bulk::Ending>,
    attempts: Vec<bulk::AttemptRecord>,
    pending: BTreeMap<Uuid, bulk::PendingChange>,
    skipped: Vec<Uuid>,
    late: Vec<(LeaseKey, Option<String>, Option<String>)>,
    dead: Vec<(Uuid, usize, TaskError)>,
    ready: Vec<(String, Uuid)>,
    /// What to count on `/metrics` once the batch commits.
    tally: Vec<Tally>,
}

/// One decided change to count: a task (by run and position) and what happened to it.
struct Tally {
    run_id: Uuid,
    at: usize,
    /// The attempt's outcome (succeeded, failed, lease_expired); None for a skipped task.
    attempt: Option<&'static str>,
    /// How the task moved: succeeded, retry, failed (dead-lettered) or skipped.
    end: &'static str,
}

impl Engine {
    /// Applies the outcome of the attempt `key`, if that lease is still current (fencing).
    pub async fn complete(&self, tenant: &Tenant, key: LeaseKey, outcome: Outcome) -> Result<Verdict, EngineError> {
        let mut verdicts = self.complete_batch(tenant, vec![Completion { key, outcome }]).await?;
        verdicts.pop().ok_or_else(|| corrupt("a batch of one gave no verdict").into())
    }

    /// Applies many outcomes in one transaction, in order, and gives a verdict for each. When the
    /// batch cannot be applied as a whole, each outcome is applied on its own, so that one bad
    /// row costs only its own result.
    pub async fn complete_many(&self, tenant: &Tenant, items: Vec<Completion>) -> Vec<Result<Verdict, EngineError>> {
        if items.len() == 1 {
            return vec![
                self.complete_batch(tenant, items)
                    .await
                    .and_then(|mut v| v.pop().ok_or_else(|| corrupt("a batch of one gave no verdict").into())),
            ];
        }
        match self.complete_batch(tenant, items.clone()).await {
            Ok(verdicts) => verdicts.into_iter().map(Ok).collect(),
            Err(e) => {
                tracing::warn!(error = %e, count = items.len(), "a batch of results failed; applying them one by one");
                let mut out = Vec::with_capacity(items.len());
                for c in items {
                    out.push(self.complete(tenant, c.key, c.outcome).await);
                }
                out
            }
        }
    }

    /// Applies `items` in one transaction: the runs of their tasks are locked (in id order), their
    /// tasks read once, every outcome decided in memory in order (so a result repeated within
    /// the batch sees the first one's effect), and each kind of change written in one statement.
    async fn complete_batch(&self, tenant: &Tenant, items: Vec<Completion>) -> Result<Vec<Verdict>, EngineError> {
        let max = self.payload_limits().max;
        let items: Vec<Completion> =
            items.into_iter().map(|c| Completion { key: c.key, outcome: checked(c.outcome, max) }).collect();
        // Large outputs go to object storage before the transaction that references them.
        let items = self.offload_outputs(tenant, items).await?;
        let now = self.now();
        let db_now = self.db_now(now);
        let backend = self.store.backend();
        let mut ids: Vec<Uuid> = items.iter().map(|c| c.key.task_id).collect();
        ids.sort();
        ids.dedup();
        let txn = self.store.begin().await?;
        // Lock order everywhere: runs (by id), then their tasks.
        let locked = bulk::lock_runs_of_tasks(&txn, backend, tenant, &ids).await?;
        let run_ids: Vec<Uuid> = locked.iter().map(|r| r.id).collect();
        let mut work: BTreeMap<Uuid, RunWork> = locked
            .into_iter()
            .map(|run| (run.id, RunWork { run, tasks: Vec::new(), log: Vec::new(), settled: false }))
            .collect();
        for t in bulk::tasks_of_runs(&txn, backend, tenant, &run_ids).await? {
            if let Some(w) = work.get_mut(&t.run_id) {
                w.tasks.push(t);
            }
        }
        // Expiry verdicts (the reaper's) need the lease's expiry as of now: lock those tasks so
        // that a heartbeat cannot extend them in between, and read the database's now.
        let expiring: Vec<Uuid> =
            items.iter().filter(|c| c.outcome == Outcome::LeaseExpired).map(|c| c.key.task_id).collect();
        let expiry_now = if expiring.is_empty() {
            None
        } else {
            for fresh in bulk::lock_tasks(&txn, backend, tenant, &expiring).await? {
                if let Some(t) = work.get_mut(&fresh.run_id).and_then(|w| w.tasks.iter_mut().find(|t| t.id == fresh.id))
                {
                    *t = fresh;
                }
            }
            Some(crate::store::dbtime::read(&txn, backend, now).await?)
        };
        let where_is: HashMap<Uuid, (Uuid, usize)> =
            work.values().flat_map(|w| w.tasks.iter().enumerate().map(move |(i, t)| (t.id, (w.run.id, i)))).collect();

        let mut writes = Writes::default();
        let mut verdicts: Vec<Option<Verdict>> = vec![None; items.len()];
        // Results that did not hold the lease: (item, why), told apart from resends below.
        let mut not_current: Vec<(usize, String)> = Vec::new();
        for (i, c) in items.iter().enumerate() {
            let key = c.key;
            let Some(&(run_id, at)) = where_is.get(&key.task_id) else {
                verdicts[i] = Some(Verdict::Stale { reason: format!("no task {}", key.task_id) });
                continue;
            };
            let w = work.get_mut(&run_id).ok_or_else(|| corrupt("located task without its run"))?;
            let t = &w.tasks[at];
            let mut key = key;
            if self.sabotage == super::Sabotage::UnfencedResults
                && c.outcome != Outcome::LeaseExpired
                && t.state == TaskState::Leased.as_str()
                && let (Ok(attempt), Some(lease_id)) = (u32::try_from(t.attempt), t.lease_id)
            {
                // The sabotage: whoever sends a result is taken for the current lease holder.
                key = LeaseKey { task_id: key.task_id, attempt, lease_id };
            }
            let holds = t.attempt == i32::try_from(key.attempt).unwrap_or(-1) && t.lease_id == Some(key.lease_id);
            if holds && t.state == TaskState::Cancelled.as_str() {
                // Recorded on the attempt, but it changes nothing: the run was cancelled.
                let (err, out) = match &c.outcome {
                    Outcome::Succeeded { output_json } => (None, Some(output_json.clone())),
                    Outcome::Failed(e) => (Some(error_json(e)), None),
                    Outcome::LeaseExpired => (None, None),
                };
                writes.late.push((key, err, out));
                verdicts[i] = Some(Verdict::Stale {
                    reason: "the task was cancelled; the result is recorded but changes nothing".into(),
                });
                continue;
            }
            let expired = match (&c.outcome, expiry_now) {
                (Outcome::LeaseExpired, Some(now)) => t.lease_expires_at.is_some_and(|e| e < now),
                (Outcome::LeaseExpired, None) => false,
                (Outcome::Succeeded { .. } | Outcome::Failed(_), _) => true,
            };
            if !(holds && t.state == TaskState::Leased.as_str() && expired) {
                let why = format!(
                    "lease {} of attempt {} is not current: the task is {} at attempt {}",
                    key.lease_id, key.attempt, t.state, t.attempt
                );
                not_current.push((i, why));
                continue;
            }
            self.decide(w, at, key, &c.outcome, &mut writes)?;
            verdicts[i] = Some(Verdict::Accepted);
        }
        let mut changes = Vec::new();
        let mut firsts: Vec<(Uuid, i64)> = Vec::new();
        let mut ended: Vec<EndedRun> = Vec::new();
        let mut run_ends: Vec<(Uuid, &'static str)> = Vec::new();
        let inline_max = self.payload_limits().inline_max;
        for w in work.values_mut() {
            if w.settled {
                finish_if_done(w, inline_max)?;
            }
            if w.log.is_empty() {
                continue;
            }
            let end = match w.run.state.as_str() {
                s if s == RunState::Succeeded.as_str() => {
                    Some((RunState::Succeeded.as_str(), w.run.output.clone(), None))
                }
                s if s == RunState::Failed.as_str() => Some((RunState::Failed.as_str(), None, w.run.reason.clone())),
                _ => None,
            };
            if let Some((state, _, _)) = &end {
                run_ends.push((w.run.id, state));
                ended.push(EndedRun {
                    id: w.run.id,
                    workflow_name: w.run.workflow_name.clone(),
                    gated: w.run.gated,
                    schedule_id: w.run.schedule_id,
                });
            }
            let first = w.run.next_event_seq + 1;
            w.run.next_event_seq += i64::try_from(w.log.len()).map_err(corrupt)?;
            changes.push(bulk::RunChange { id: w.run.id, next_event_seq: w.run.next_event_seq, end });
            firsts.push((w.run.id, first));
        }

        let written = bulk::end_attempts(&txn, backend, tenant, &writes.endings, db_now).await?;
        if written.len() != writes.endings.len() {
            // Every writer of these tasks holds their run's lock, which this transaction has.
            return Err(corrupt(format!(
                "{} of {} fenced results applied under the run locks",
                written.len(),
                writes.endings.len()
            ))
            .into());
        }

        for (key, err, out) in writes.late {
            leases::record_late_result(&txn, tenant, key, err, out).await?;
        }
        let pending: Vec<bulk::PendingChange> = writes.pending.into_values().collect();
        progress::set_task_state(&txn, &writes.skipped, &[TaskState::Pending], TaskState::Skipped, db_now).await?;
        for (run_id, at, e) in &writes.dead {
            let w = work.get(run_id).ok_or_else(|| corrupt("dead letter without its run"))?;
            let t = &w.tasks[*at];
            let row = dead_letters::NewDeadLetter {
                task_id: t.id,
                run_id: *run_id,
                workflow_name: &w.run.workflow_name,
                workflow_version: w.run.workflow_version,
                task_name: &t.name,
                task_type: &t.task_type,
                error_json: &error_json(e),
                error_type: &e.kind,
                attempts: t.attempt,
                now,
            };
            dead_letters::insert(&txn, tenant, &row).await?;
        }
        let numbered: Vec<(Uuid, i64, &[NewEvent])> =
            firsts.iter().filter_map(|(id, first)| work.get(id).map(|w| (*id, *first, w.log.as_slice()))).collect();
        let (attempts, runs) = (&writes.attempts, &changes);
        bulk::write_progress(&txn, backend, tenant, attempts, &pending, runs, &numbered, now, db_now).await?;
        // Runs under a concurrency limit that ended free their slot for the next queued run.
        ended.retain(EndedRun::matters);
        let mut admitted = Admission::default();
        if !ended.is_empty() {
            admitted = self.release_slots(&txn, tenant, &ended, now).await?;
        }
        txn.commit().await.map_err(StoreError::from)?;
        self.count_batch(&work, &writes.tally, &writes.dead, &run_ends, now);
        writes.ready.append(&mut admitted.ready);
        self.publish(tenant, &writes.ready).await;
        if !admitted.evict.is_empty() {
            Box::pin(self.evict(tenant, admitted.evict)).await;
        }

        // The same result sent again (its ack was lost) is accepted again, changing nothing.
        for (i, why) in not_current {
            let c = &items[i];
            let recorded = leases::attempt_outcome(self.store.conn(), tenant, c.key).await?;
            let repeat = match (&c.outcome, recorded.as_deref()) {
                (Outcome::Succeeded { .. }, Some("succeeded")) | (Outcome::Failed(_), Some("failed")) => true,
                (Outcome::Succeeded { .. } | Outcome::Failed(_) | Outcome::LeaseExpired, _) => false,
            };
            verdicts[i] = Some(if repeat { Verdict::Accepted } else { Verdict::Stale { reason: why } });
        }
        // Results turned away (the reaper's own stale verdicts are not results).
        let stale = items
            .iter()
            .zip(&verdicts)
            .filter(|(c, v)| c.outcome != Outcome::LeaseExpired && matches!(v, Some(Verdict::Stale { .. })))
            .count();
        if stale > 0 {
            self.metrics.engine().stale_results(stale as u64);
        }
        verdicts.into_iter().map(|v| v.ok_or_else(|| corrupt("an outcome got no verdict").into())).collect()
    }

    /// Decides in memory what the current attempt `key` of task `at` of `w` ending with
    /// `outcome` changes, and gathers the writes.
    fn decide(
        &self,
        w: &mut RunWork,
        at: usize,
        key: LeaseKey,
        outcome: &Outcome,
        writes: &mut Writes,
    ) -> Result<(), EngineError> {
        let t = &w.tasks[at];
        let policy: RetryPolicy = serde_json::from_str(&t.retry_policy).map_err(corrupt)?;
        let (transition, attempt_outcome, final_error) = match outcome {
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
        let name = t.name.clone();
        let end = match &transition {
            Transition::Succeeded { .. } => "succeeded",
            Transition::Retry { .. } => "retry",
            Transition::Failed { .. } => "failed",
        };
        writes.tally.push(Tally { run_id: w.run.id, at, attempt: Some(attempt_outcome), end });
        let (state, output, err, delay) = match &transition {
            Transition::Succeeded { output } => (TaskState::Succeeded, Some(output.clone()), None, Duration::ZERO),
            Transition::Retry { error_json, delay } => (TaskState::Ready, None, Some(error_json.clone()), *delay),
            Transition::Failed { error_json } => (TaskState::Failed, None, Some(error_json.clone()), Duration::ZERO),
        };
        writes.endings.push(bulk::Ending { key, state, output: output.clone(), last_error: err.clone(), delay });
        writes.attempts.push(bulk::AttemptRecord {
            key,
            outcome: attempt_outcome,
            error: err.clone(),
            output: output.clone(),
        });
        let t = &mut w.tasks[at];
        t.state = state.as_str().to_owned();
        t.lease_expires_at = None;
        if let Some(o) = output {
            t.output = Some(o);
        }
        if let Some(e) = err {
            t.last_error = Some(e);
        }
        match &transition {
            Transition::Succeeded { .. } => {
                w.log.push(NewEvent::task("task_succeeded", &name, Some(key.attempt), json!({})));
                release_dependents(w, &name, writes)?;
                w.settled = true;
            }
            Transition::Retry { delay, error_json } => w.log.push(NewEvent::task(
                "task_retry_scheduled",
                &name,
                Some(key.attempt),
                json!({"delay_ms": u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "error": serde_json::from_str::<serde_json::Value>(error_json).unwrap_or_default()}),
            )),
            Transition::Failed { .. } => {
                let e = final_error.ok_or_else(|| corrupt("failure without error"))?;
                w.log.push(NewEvent::task("task_failed", &name, Some(key.attempt), json!({"error": e})));
                writes.dead.push((w.run.id, at, e));
                skip_downstream(w, &name, writes)?;
                w.settled = true;
            }
        }
        Ok(())
    }

    /// Counts a committed batch on `/metrics` from what it decided in memory: attempts and
    /// how each task moved by task type, execution time (lease to result, `now` against the
    /// lease's `updated_at`), dead letters and ended runs by workflow.
    fn count_batch(
        &self,
        work: &BTreeMap<Uuid, RunWork>,
        tally: &[Tally],
        dead: &[(Uuid, usize, TaskError)],
        run_ends: &[(Uuid, &str)],
        now: DateTime<Utc>,
    ) {
        let m = self.metrics.engine();
        for c in tally {
            let Some(w) = work.get(&c.run_id) else { continue };
            let Some(t) = w.tasks.get(c.at) else { continue };
            let task_type = t.task_type.as_str();
            if let Some(outcome) = c.attempt {
                m.attempt(task_type, outcome);
                if outcome == "lease_expired" {
                    m.lease_expired(task_type);
                } else {
                    m.execution(task_type, seconds_between(t.updated_at, now));
                }
            }
            match c.end {
                "retry" => m.retry(task_type),
                "failed" => m.task_finished(task_type, "failed"),
                other => m.task_finished(task_type, other),
            }
        }
        for (run_id, _, e) in dead {
            if let Some(w) = work.get(run_id) {
                m.dead_lettered(&w.run.workflow_name, &e.kind);
            }
        }
        for (run_id, outcome) in run_ends {
            if let Some(w) = work.get(run_id) {
                m.run_finished(&w.run.workflow_name, outcome);
            }
        }
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
            let delay = policy.backoff(attempt, self.entropy.unit());
            (Transition::Retry { error_json: error_json(&e), delay }, attempt_outcome, Some(e))
        } else {
            (Transition::Failed { error_json: error_json(&e) }, attempt_outcome, Some(e))
        }
    }
}

/// Dependents of `done` whose dependencies have now all succeeded become ready.
fn release_dependents(w: &mut RunWork, done: &str, writes: &mut Writes) -> Result<(), EngineError> {
    for t in w.tasks.iter_mut().filter(|t| t.state == TaskState::Pending.as_str()) {
        let deps: Vec<String> = serde_json::from_str(&t.depends_on).map_err(corrupt)?;
        if !deps.iter().any(|d| d == done) {
            continue;
        }
        t.pending_deps -= 1;
        let ready = t.pending_deps <= 0;
        if ready {
            t.state = TaskState::Ready.as_str().to_owned();
            writes.ready.push((crate::queue::lane(&t.task_type, Priority::from_rank(t.priority)), t.id));
            w.log.push(NewEvent::task("task_ready", &t.name, None, json!({})));
        }
        writes.pending.insert(t.id, bulk::PendingChange { id: t.id, pending_deps: t.pending_deps, ready });
    }
    Ok(())
}

/// Ends the run in memory when no task can move any more: succeeded if every task did, else failed.
fn finish_if_done(w: &mut RunWork, inline_max: usize) -> Result<(), EngineError> {
    if w.run.state != RunState::Running.as_str() {
        return Ok(());
    }
    let states: Vec<TaskState> = w.tasks.iter().map(|t| t.state.parse().map_err(corrupt)).collect::<Result<_, _>>()?;
    let open = states.iter().any(|s| match s {
        TaskState::Pending | TaskState::Ready | TaskState::Leased => true,
        TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled | TaskState::Skipped => false,
    });
    if open {
        return Ok(());
    }
    if states.iter().all(|s| *s == TaskState::Succeeded) {
        w.run.state = RunState::Succeeded.as_str().to_owned();
        w.run.output = Some(sink_outputs(&w.tasks, inline_max)?);
        w.log.push(NewEvent::run("run_succeeded", json!({})));
    } else {
        let failed: Vec<&str> =
            w.tasks.iter().filter(|t| t.state == TaskState::Failed.as_str()).map(|t| t.name.as_str()).collect();
        let reason = format!("task(s) failed: {}", failed.join(", "));
        w.run.state = RunState::Failed.as_str().to_owned();
        w.run.reason = Some(reason.clone());
        w.log.push(NewEvent::run("run_failed", json!({"reason": reason})));
    }
    Ok(())
}

/// Pending tasks downstream of `failed` (transitively) are skipped: they can never run.
fn skip_downstream(w: &mut RunWork, failed: &str, writes: &mut Writes) -> Result<(), EngineError> {
    let mut blocked: HashSet<String> = HashSet::from([failed.to_owned()]);
    loop {
        let mut changed = false;
        let run_id = w.run.id;
        for (at, t) in w.tasks.iter_mut().enumerate().filter(|(_, t)| t.state == TaskState::Pending.as_str()) {
            let deps: Vec<String> = serde_json::from_str(&t.depends_on).map_err(corrupt)?;
            if deps.iter().any(|d| blocked.contains(d)) {
                blocked.insert(t.name.clone());
                t.state = TaskState::Skipped.as_str().to_owned();
                writes.skipped.push(t.id);
                writes.tally.push(Tally { run_id, at, attempt: None, end: "skipped" });
                writes.pending.remove(&t.id);
                w.log.push(NewEvent::task("task_skipped", &t.name, None, json!({"because": failed})));
                changed = true;
            }
        }
        if !changed {
            return Ok(());
        }
    }
}

/// The run's output: `{"task": output}` for every task nothing depends on; or, when any of those
/// outputs is kept in object storage or the document would be larger than `inline_max`, the mark
/// that readers assemble it from the tasks' payloads.
fn sink_outputs(all: &[task::Model], inline_max: usize) -> Result<String, EngineError> {
    let mut depended: HashSet<String> = HashSet::new();
    for t in all {
        let deps: Vec<String> = serde_json::from_str(&t.depends_on).map_err(corrupt)?;
        depended.extend(deps);
    }
    let mut sizes = Vec::new();
    let mut offloaded = false;
    for t in all.iter().filter(|t| !depended.contains(&t.name)) {
        let stored = Stored::decode(t.output.clone().unwrap_or_else(|| "null".into())).map_err(corrupt)?;
        offloaded |= !matches!(stored, Stored::Inline(_));
        sizes.push((t.name.as_str(), stored.size()));
    }
    let size = assembled_size(sizes);
    if offloaded || size > inline_max as u64 {
        return Ok(Stored::Assembled { size }.encode());
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

/// Seconds from `from` to `to` (0 if `to` is earlier).
pub(super) fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().map_or(0.0, |us| us.max(0) as f64 / 1e6)
}
