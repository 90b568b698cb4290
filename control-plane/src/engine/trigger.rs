//! Triggering: creating runs and all their tasks in one transaction (one run or a thousand), with idempotency keys.

use super::admission::Admission;
use super::{Engine, EngineError, payloads};
use crate::domain::flow::Priority;
use crate::domain::payload_ref::PayloadRef;
use crate::domain::records::{Run, RunDetail, ScheduleTick, Task, Tenant, WorkflowVersion};
use crate::domain::state::{RunState, TaskState, TriggerSource};
use crate::domain::validate::{
    ValidWorkflow, ValidationError, validate, validate_concurrency_key, validate_idempotency_key,
    validate_input_json_within,
};
use crate::store::events::NewEvent;
use crate::store::gates;
use crate::store::{StoreError, bulk, dbtime, runs, tasks};
use crate::telemetry::spans;
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

/// Most runs one bulk trigger may create.
pub const MAX_BULK_TRIGGER: usize = 1_000;
/// How often a bulk trigger starts over when a concurrent trigger took one of its keys.
const KEY_RACE_ATTEMPTS: usize = 3;

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
    /// None for normal.
    pub priority: Option<Priority>,
    /// Runs sharing it count against the workflow's `max_per_key`.
    pub concurrency_key: Option<String>,
    /// The cron tick firing this run: at most one run per tick, ever (a request for a tick
    /// already fired gets that run with `created = false`).
    pub schedule: Option<ScheduleTick>,
    /// Wait (queued) until no other run of the schedule is running (overlap `buffer_one`).
    pub after_schedule_runs: bool,
}

/// What TriggerRun did.
#[derive(Debug, Clone)]
pub struct TriggerOutcome {
    pub run: RunDetail,
    /// False when the idempotency key matched an existing run, which is returned.
    pub created: bool,
}

/// What a bulk trigger did for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Triggered {
    pub run_id: Uuid,
    pub created: bool,
    pub state: RunState,
}

/// Hash of the input's canonical form (keys sorted, no whitespace), so that the
/// same document written differently counts as the same input.
fn input_hash(input: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(input.to_string().as_bytes()))
}

/// A request whose fields passed validation.
pub(super) struct Checked<'a> {
    req: &'a TriggerRequest,
    key: Option<&'a str>,
    input: String,
    hash: String,
}

fn invalid(e: ValidationError) -> EngineError {
    EngineError::InvalidArgument { field: e.path, reason: e.reason }
}

/// Checks a request's fields; its input may be up to `max_input` bytes.
pub(super) fn check(req: &TriggerRequest, max_input: usize) -> Result<Checked<'_>, EngineError> {
    let key = validate_idempotency_key(req.idempotency_key.as_deref().unwrap_or_default()).map_err(invalid)?;
    validate_concurrency_key(req.concurrency_key.as_deref().unwrap_or_default()).map_err(invalid)?;
    let value = validate_input_json_within(&req.input_json, max_input).map_err(invalid)?;
    let input = if req.input_json.trim().is_empty() { "{}".to_owned() } else { req.input_json.clone() };
    Ok(Checked { req, key, input, hash: input_hash(&value) })
}

/// What [`check`] derived from a request's input (the document and its hash), kept so that the
/// request can be checked again later without parsing its input again.
#[derive(Debug, Clone)]
pub(super) struct CheckedInput {
    input: String,
    hash: String,
}

impl Checked<'_> {
    pub(super) fn input(&self) -> CheckedInput {
        CheckedInput { input: self.input.clone(), hash: self.hash.clone() }
    }
}

/// `req` checked again, with the input [`check`] already derived from it.
pub(super) fn recheck(req: &TriggerRequest, input: CheckedInput) -> Result<Checked<'_>, EngineError> {
    let key = validate_idempotency_key(req.idempotency_key.as_deref().unwrap_or_default()).map_err(invalid)?;
    Ok(Checked { req, key, input: input.input, hash: input.hash })
}

/// A workflow version, read and validated once per call however many runs use it.
pub(super) struct Resolved {
    wf: WorkflowVersion,
    valid: ValidWorkflow,
}

/// What one request comes to.
pub(super) enum Plan {
    /// The run holding the request's idempotency key.
    Existing(runs::StoredRun),
    /// The same key as request `i` of this call.
    SameAs(usize),
    New {
        run_id: Uuid,
        resolved: Arc<Resolved>,
    },
}

/// A run created by this call: its record and the rows it was inserted as.
pub(super) struct Created {
    pub(super) detail: RunDetail,
    /// Created queued: admission may have changed it since (`detail` holds only its state).
    pub(super) queued: bool,
}

impl Engine {
    /// [`Engine::trigger_run`] in a transaction of its own.
    pub(super) async fn trigger_one(
        &self,
        tenant: &Tenant,
        checked: Checked<'_>,
    ) -> Result<TriggerOutcome, EngineError> {
        let (plans, mut created) = self.trigger_checked(tenant, &[checked]).await?;
        match plans.into_iter().next() {
            Some(Plan::New { run_id, .. }) => {
                let run = created.remove(&run_id).ok_or_else(|| StoreError::Corrupt("created run missing".into()))?;
                let detail = if run.queued { self.get_run(tenant, run_id).await? } else { run.detail };
                Ok(TriggerOutcome { run: detail, created: true })
            }
            Some(Plan::Existing(existing)) => {
                Ok(TriggerOutcome { run: self.get_run(tenant, existing.run.id).await?, created: false })
            }
            Some(Plan::SameAs(_)) | None => {
                Err(StoreError::Corrupt("a trigger of one request planned nothing".into()))?
            }
        }
    }

    /// Creates many runs in one transaction (all or nothing). A request whose key is held
    /// (already, or by an earlier request of this call) gets that run with `created = false`.
    /// Errors name the request as `runs[i]`.
    pub async fn trigger_runs(&self, tenant: &Tenant, reqs: &[TriggerRequest]) -> Result<Vec<Triggered>, EngineError> {
        if reqs.len() > MAX_BULK_TRIGGER {
            return Err(EngineError::invalid(
                "runs",
                format!("{} runs in one call; the limit is {MAX_BULK_TRIGGER}", reqs.len()),
            ));
        }
        let checked = reqs
            .iter()
            .enumerate()
            .map(|(i, r)| check(r, self.payload_limits().max).map_err(|e| e.within(&format!("runs[{i}]"))))
            .collect::<Result<Vec<_>, _>>()?;
        self.admit_triggers(tenant, reqs.iter().filter(|r| super::trigger_group::is_api(r)).count()).await?;
        let (plans, created) = self.trigger_checked(tenant, &checked).await?;
        let mut out: Vec<Triggered> = Vec::with_capacity(plans.len());
        for plan in &plans {
            let t = match plan {
                Plan::New { run_id, .. } => Triggered {
                    run_id: *run_id,
                    created: true,
                    state: created.get(run_id).map_or(RunState::Running, |c| c.detail.run.state),
                },
                Plan::Existing(r) => Triggered { run_id: r.run.id, created: false, state: r.run.state },
                Plan::SameAs(j) => Triggered { created: false, ..out[*j] },
            };
            out.push(t);
        }
        Ok(out)
    }

    /// Plans and creates the runs of `checked`, starting over when a concurrent trigger
    /// takes one of their keys between the lookup and the insert.
    pub(super) async fn trigger_checked(
        &self,
        tenant: &Tenant,
        checked: &[Checked<'_>],
    ) -> Result<(Vec<Plan>, HashMap<Uuid, Created>), EngineError> {
        for _ in 0..KEY_RACE_ATTEMPTS {
            let plans = self.plan(tenant, checked).await?;
            if let Some(created) = self.create(tenant, checked, &plans).await? {
                return Ok((plans, created));
            }
        }
        Err(StoreError::Conflict("idempotency keys kept being taken by concurrent triggers".into()))?
    }

    /// What each request comes to: existing runs by key (one query), workflows resolved once.
    async fn plan(&self, tenant: &Tenant, checked: &[Checked<'_>]) -> Result<Vec<Plan>, EngineError> {
        let bulk = checked.len() > 1;
        let at = |i: usize, e: EngineError| if bulk { e.within(&format!("runs[{i}]")) } else { e };
        let keyed: Vec<(&str, &str)> =
            checked.iter().filter_map(|c| c.key.map(|k| (c.req.workflow_name.as_str(), k))).collect();
        let mut existing: HashMap<(String, String), runs::StoredRun> = HashMap::new();
        for r in runs::by_idempotency_keys(self.store.conn(), tenant, &keyed).await? {
            let key = r.run.idempotency_key.clone().unwrap_or_default();
            existing.insert((r.run.workflow_name.clone(), key), r);
        }
        // A cron tick makes one run, ever: a tick already fired answers with its run.
        let ticks: Vec<ScheduleTick> = checked.iter().filter_map(|c| c.req.schedule).collect();
        let mut fired: HashMap<ScheduleTick, runs::StoredRun> = HashMap::new();
        for r in runs::by_schedule_ticks(self.store.conn(), tenant, &ticks).await? {
            if let Some(tick) = r.run.schedule {
                fired.insert(tick, r);
            }
        }
        let mut first_of_tick: HashMap<ScheduleTick, usize> = HashMap::new();
        let mut resolved: HashMap<(&str, Option<u32>), Arc<Resolved>> = HashMap::new();
        let mut first_of_key: HashMap<(&str, &str), usize> = HashMap::new();
        let mut plans = Vec::with_capacity(checked.len());
        for (i, c) in checked.iter().enumerate() {
            let version = c.req.workflow_version;
            if let Some(tick) = c.req.schedule {
                if let Some(found) = fired.get(&tick) {
                    plans.push(Plan::Existing(found.clone()));
                    continue;
                }
                if let Some(&j) = first_of_tick.get(&tick) {
                    plans.push(Plan::SameAs(j));
                    continue;
                }
                first_of_tick.insert(tick, i);
            }
            if let Some(key) = c.key {
                let wf = c.req.workflow_name.as_str();
                if let Some(found) = existing.get(&(wf.to_owned(), key.to_owned())) {
                    check_same(found, &c.hash, key, version).map_err(|e| at(i, e))?;
                    plans.push(Plan::Existing(found.clone()));
                    continue;
                }
                if let Some(&j) = first_of_key.get(&(wf, key)) {
                    if checked[j].hash != c.hash || checked[j].req.workflow_version != version {
                        return Err(at(
                            i,
                            EngineError::AlreadyExists(format!(
                                "idempotency key {key:?} is used by runs[{j}] of this call with a different input or version"
                            )),
                        ));
                    }
                    plans.push(Plan::SameAs(j));
                    continue;
                }
                first_of_key.insert((wf, key), i);
            }
            let name = c.req.workflow_name.as_str();
            let r = match resolved.get(&(name, version)) {
                Some(r) => r.clone(),
                None => {
                    let r = Arc::new(self.resolve(tenant, name, version).await.map_err(|e| at(i, e))?);
                    resolved.insert((name, version), r.clone());
                    r
                }
            };
            plans.push(Plan::New { run_id: Uuid::now_v7(), resolved: r });
        }
        Ok(plans)
    }

    async fn resolve(&self, tenant: &Tenant, name: &str, version: Option<u32>) -> Result<Resolved, EngineError> {
        let wf = self.get_workflow(tenant, name, version).await?;
        let valid = validate(&wf.definition).map_err(|errors| {
            StoreError::Corrupt(format!(
                "stored workflow {} v{} no longer validates: {}",
                wf.name,
                wf.version,
                errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
            ))
        })?;
        Ok(Resolved { wf, valid })
    }

    /// Inserts the new runs of `plans` with their tasks and first events in one transaction
    /// and publishes their ready tasks. None when a concurrent trigger took one of the keys
    /// (nothing was written: plan again).
    async fn create(
        &self,
        tenant: &Tenant,
        checked: &[Checked<'_>],
        plans: &[Plan],
    ) -> Result<Option<HashMap<Uuid, Created>>, EngineError> {
        let news: Vec<(usize, Uuid, &Resolved)> = plans
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p {
                Plan::New { run_id, resolved } => Some((i, *run_id, resolved.as_ref())),
                Plan::Existing(_) | Plan::SameAs(_) => None,
            })
            .collect();
        if news.is_empty() {
            return Ok(Some(HashMap::new()));
        }
        // Inputs over the inline limit go to object storage first; if these runs are not
        // committed after all, their objects are deleted again.
        let mut offloaded: HashMap<Uuid, PayloadRef> = HashMap::new();
        for &(i, run_id, _) in &news {
            match self.offload(tenant, run_id, &checked[i].input).await {
                Ok(Some(r)) => {
                    offloaded.insert(run_id, r);
                }
                Ok(None) => {}
                Err(e) => {
                    self.forget_objects(tenant, offloaded.into_keys().collect());
                    return Err(e.into());
                }
            }
        }
        let created = self.insert_planned(tenant, checked, &news, &offloaded).await;
        if !matches!(created, Ok(Some(_))) {
            self.forget_objects(tenant, offloaded.into_keys().collect());
        }
        created
    }

    /// The transaction of [`Self::create`]: `offloaded` holds the new runs' inputs kept in object storage.
    async fn insert_planned(
        &self,
        tenant: &Tenant,
        checked: &[Checked<'_>],
        news: &[(usize, Uuid, &Resolved)],
        offloaded: &HashMap<Uuid, PayloadRef>,
    ) -> Result<Option<HashMap<Uuid, Created>>, EngineError> {
        let txn = self.store.begin().await?;
        // Stamped with the database clock: leases compare `available_at` with it.
        let now = dbtime::read(&txn, self.store.backend(), self.now()).await?.trunc_subsecs(6);
        let mut made = Vec::with_capacity(news.len());
        for &(i, run_id, r) in news {
            made.push(new_run(&checked[i], run_id, r, now));
        }
        // What the runs' input columns hold: the document, or the reference to its object.
        let columns: Vec<String> =
            made.iter().map(|(d, _)| payloads::column(&d.run.input, offloaded.get(&d.run.id))).collect();
        for (d, _) in &mut made {
            if let Some(r) = offloaded.get(&d.run.id) {
                d.run.input = String::new();
                d.run.input_ref = Some(r.clone());
            }
        }
        let (_trigger_spans, trace_contexts) = trigger_spans(&made);
        let mut run_rows: Vec<runs::NewRun<'_>> = made
            .iter()
            .zip(news)
            .zip(&columns)
            .map(|(((detail, log), &(i, _, r)), input)| runs::NewRun {
                id: detail.run.id,
                workflow_name: &r.wf.name,
                workflow_version: r.wf.version,
                state: detail.run.state,
                input,
                idempotency_key: checked[i].key,
                input_hash: &checked[i].hash,
                trigger_source: detail.run.trigger_source,
                events: i64::try_from(log.len()).unwrap_or(i64::MAX),
                now,
                priority: detail.run.priority,
                concurrency_key: detail.run.concurrency_key.as_deref(),
                schedule: detail.run.schedule,
                gated: detail.run.state == RunState::Queued,
                reason: None,
                trace_context: trace_contexts.get(&detail.run.id).map(String::as_str),
            })
            .collect();
        // In key order, so that bulk triggers sharing keys wait for each other instead of deadlocking.
        run_rows.sort_by(|a, b| (a.workflow_name, a.idempotency_key).cmp(&(b.workflow_name, b.idempotency_key)));
        let mut task_rows = Vec::new();
        for ((detail, _), &(_, _, r)) in made.iter().zip(news) {
            task_rows.extend(detail.tasks.iter().zip(&r.valid.tasks).map(|(t, v)| tasks::NewTask {
                id: t.id,
                run_id: t.run_id,
                name: &t.name,
                task_type: &t.task_type,
                state: t.state,
                depends_on: &t.depends_on,
                retry: &v.retry,
                timeout_ms: i64::try_from(v.timeout.as_millis()).unwrap_or(i64::MAX),
                now,
                priority: detail.run.priority,
            }));
        }
        let logs: Vec<(Uuid, Vec<NewEvent>)> = made.iter().map(|(d, log)| (d.run.id, log.clone())).collect();
        let backend = self.store.backend();
        let inserted = bulk::create_runs(&txn, backend, tenant, &run_rows, &task_rows, &logs, now).await?;
        if inserted != run_rows.len() as u64 {
            // A concurrent trigger committed one of these keys first.
            drop(txn);
            return Ok(None);
        }
        drop((task_rows, logs, run_rows));
        // Queued runs: their gates, then admission of what fits, in this transaction.
        let gates: Vec<gates::NewGate> = made
            .iter()
            .zip(news)
            .filter(|((d, _), _)| d.run.state == RunState::Queued)
            .map(|((d, _), &(i, _, _))| gates::NewGate {
                run_id: d.run.id,
                workflow_name: d.run.workflow_name.clone(),
                concurrency_key: d.run.concurrency_key.clone(),
                schedule_id: checked[i]
                    .req
                    .after_schedule_runs
                    .then_some(d.run.schedule)
                    .flatten()
                    .map(|s| s.schedule_id),
                created_at: now,
            })
            .collect();
        let mut admitted = Admission::default();
        if !gates.is_empty() {
            gates::insert(&txn, tenant, &gates).await?;
            let workflows: BTreeSet<String> = gates.iter().map(|g| g.workflow_name.clone()).collect();
            let fresh: HashSet<Uuid> = gates.iter().map(|g| g.run_id).collect();
            admitted = self.admit(&txn, tenant, &workflows, &fresh, now).await?;
        }
        txn.commit().await.map_err(StoreError::from)?;
        for (d, _) in &made {
            self.metrics.engine().run_started(&d.run.workflow_name);
        }
        let mut ready: Vec<(String, Uuid)> = made
            .iter()
            .flat_map(|(d, _)| d.tasks.iter().map(|t| (d.run.priority, t)))
            .filter(|(_, t)| t.state == TaskState::Ready)
            .map(|(p, t)| (crate::queue::lane(&t.task_type, p), t.id))
            .collect();
        ready.append(&mut admitted.ready);
        self.publish(tenant, &ready).await;
        let gated: HashSet<Uuid> = gates.iter().map(|g| g.run_id).collect();
        let created = made
            .into_iter()
            .map(|(mut detail, _)| {
                let queued = gated.contains(&detail.run.id);
                if queued {
                    detail.run.state = admitted.state_of(detail.run.id);
                }
                (detail.run.id, Created { detail, queued })
            })
            .collect();
        self.evict(tenant, std::mem::take(&mut admitted.evict)).await;
        Ok(Some(created))
    }
}

/// The answer to a trigger whose idempotency key is already held by `existing`.
fn check_same(existing: &runs::StoredRun, hash: &str, key: &str, version: Option<u32>) -> Result<(), EngineError> {
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
    Ok(())
}

/// A new run of `r` for request `c`: its record, its tasks (those without dependencies
/// ready, the rest pending) and its first events.
fn new_run(c: &Checked<'_>, run_id: Uuid, r: &Resolved, now: DateTime<Utc>) -> (RunDetail, Vec<NewEvent>) {
    let source = c.req.source.unwrap_or(TriggerSource::Api);
    // A gated run starts queued: admission (in the same transaction) starts it when it fits.
    let gated = is_gated(c, r);
    let first = if gated { TaskState::Pending } else { TaskState::Ready };
    let tasks: Vec<Task> = r
        .valid
        .tasks
        .iter()
        .map(|t| Task {
            id: Uuid::now_v7(),
            run_id,
            name: t.name.clone(),
            task_type: t.task_type.clone(),
            state: if t.depends_on.is_empty() { first } else { TaskState::Pending },
            depends_on: t.depends_on.clone(),
            attempt: 0,
            max_attempts: t.retry.max_attempts,
            output: None,
            output_ref: None,
            last_error: None,
            available_at: now,
            created_at: now,
            finished_at: None,
            attempts: Vec::new(),
        })
        .collect();
    let mut log = vec![NewEvent::run(
        "run_created",
        json!({"workflow": r.wf.name, "version": r.wf.version, "source": source.as_str()}),
    )];
    log.extend(
        tasks
            .iter()
            .filter(|t| t.state == TaskState::Ready)
            .map(|t| NewEvent::task("task_ready", &t.name, None, json!({}))),
    );
    let run = Run {
        id: run_id,
        workflow_name: r.wf.name.clone(),
        workflow_version: r.wf.version,
        state: if gated { RunState::Queued } else { RunState::Running },
        input: c.input.clone(),
        input_ref: None,
        output: None,
        output_ref: None,
        idempotency_key: c.key.map(str::to_owned),
        trigger_source: source,
        reason: None,
        created_at: now,
        started_at: (!gated).then_some(now),
        finished_at: None,
        priority: c.req.priority.unwrap_or_default(),
        concurrency_key: c.req.concurrency_key.clone(),
        schedule: c.req.schedule,
    };
    (RunDetail { run, tasks }, log)
}

/// With traces on, a `trigger_run` span for each new run (each ends when dropped) and its
/// `traceparent`, stored on the run for dispatch to continue; nothing at all when off.
fn trigger_spans(made: &[(RunDetail, Vec<NewEvent>)]) -> (Vec<spans::Started>, HashMap<Uuid, String>) {
    let (mut started, mut contexts) = (Vec::new(), HashMap::new());
    if spans::enabled() {
        for (d, _) in made {
            if let Some(span) = spans::trigger_run(d.run.id, &d.run.workflow_name) {
                contexts.extend(span.traceparent().map(|t| (d.run.id, t)));
                started.push(span);
            }
        }
    }
    (started, contexts)
}

/// Whether a new run passes through admission: its workflow limits concurrency, or it is a
/// buffered cron tick.
fn is_gated(c: &Checked<'_>, r: &Resolved) -> bool {
    r.wf.definition.settings.limits_concurrency() || c.req.after_schedule_runs
}
