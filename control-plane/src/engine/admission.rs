//! Run admission: queued runs start when their workflow's concurrency limits and their schedule's buffer allow, first come first served.
//!
//! A run whose workflow sets `max_concurrent_runs` or `max_per_key` (or a buffered cron tick) is
//! created `queued` with a row in `run_gates`. Admission runs in the transaction that created
//! such runs or ended one, under a per-workflow advisory lock (shared by every control plane):
//! it counts the running gates and starts the queued ones that fit, oldest first. A queued run
//! blocked by its key does not hold up later runs with other keys. The limits are those of the
//! workflow's latest version.

use super::{Engine, EngineError};
use crate::domain::definition::RunSettings;
use crate::domain::flow::{ConcurrencyPolicy, Priority};
use crate::domain::records::Tenant;
use crate::domain::state::{RunState, TaskState};
use crate::store::entity::run_gate;
use crate::store::events::{self, NewEvent};
use crate::store::{gates, progress, workflows};
use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use serde_json::json;
use std::collections::{BTreeSet, HashMap, HashSet};
use uuid::Uuid;

/// Queued runs looked at per workflow per admission (the oldest).
const QUEUED_SCAN: u64 = 1_000;
/// Workflows one safety-net pass looks at.
const SWEEP_WORKFLOWS: u64 = 100;

/// What an admission did.
#[derive(Debug, Default)]
pub(super) struct Admission {
    /// Tasks made ready, to publish after the commit.
    pub ready: Vec<(String, Uuid)>,
    /// Runs that started.
    pub started: HashSet<Uuid>,
    /// New runs cancelled because they did not fit (`cancel_newest`).
    pub cancelled: HashSet<Uuid>,
    /// Running runs to cancel after the commit to make room (`cancel_in_progress`), with why.
    pub evict: Vec<(Uuid, String)>,
}

impl Admission {
    pub(super) fn merge(&mut self, other: Admission) {
        self.ready.extend(other.ready);
        self.started.extend(other.started);
        self.cancelled.extend(other.cancelled);
        self.evict.extend(other.evict);
    }

    /// The state a run created `queued` in this transaction ends it in.
    pub(super) fn state_of(&self, run_id: Uuid) -> RunState {
        if self.started.contains(&run_id) {
            RunState::Running
        } else if self.cancelled.contains(&run_id) {
            RunState::Cancelled
        } else {
            RunState::Queued
        }
    }
}

/// Why a queued run cannot start now, and whether a concurrency policy applies to it.
enum Blocked {
    /// By a limit: the policy decides; `victims` are the running runs whose end would free a slot.
    Limit { why: String, victims: Vec<Uuid> },
    /// Behind the running run of its schedule (overlap `buffer_one`): it waits, whatever the policy.
    Schedule { why: String },
}

/// Running counts of one workflow, kept up to date while admitting.
struct Counts<'a> {
    settings: &'a RunSettings,
    running: Vec<run_gate::Model>,
    per_key: HashMap<String, usize>,
    schedules: HashSet<Uuid>,
}

impl Counts<'_> {
    fn add(&mut self, g: &run_gate::Model) {
        if let Some(k) = &g.concurrency_key {
            *self.per_key.entry(k.clone()).or_default() += 1;
        }
        if let Some(s) = g.schedule_id {
            self.schedules.insert(s);
        }
        self.running.push(g.clone());
    }

    fn blocked(&self, workflow: &str, g: &run_gate::Model) -> Option<Blocked> {
        let s = self.settings;
        if s.max_concurrent_runs > 0 && self.running.len() >= s.max_concurrent_runs as usize {
            return Some(Blocked::Limit {
                why: format!(
                    "waiting for a slot: max_concurrent_runs {} of workflow {workflow:?}",
                    s.max_concurrent_runs
                ),
                victims: self.running.iter().map(|r| r.run_id).collect(),
            });
        }
        if let Some(key) = g.concurrency_key.as_deref()
            && s.max_per_key > 0
            && self.per_key.get(key).copied().unwrap_or(0) >= s.max_per_key as usize
        {
            return Some(Blocked::Limit {
                why: format!("waiting for a slot: max_per_key {} for concurrency key {key:?}", s.max_per_key),
                victims: self
                    .running
                    .iter()
                    .filter(|r| r.concurrency_key.as_deref() == Some(key))
                    .map(|r| r.run_id)
                    .collect(),
            });
        }
        if let Some(sched) = g.schedule_id
            && self.schedules.contains(&sched)
        {
            return Some(Blocked::Schedule {
                why: format!("buffered: waiting for the running run of schedule {sched} to end (overlap buffer_one)"),
            });
        }
        None
    }
}

impl Engine {
    /// Admits what fits among the queued runs of each of `workflows` (in name order, each
    /// under its advisory lock). `fresh` are the runs created queued by this transaction: they
    /// get their waiting reason, or are cancelled under `cancel_newest`.
    pub(super) async fn admit<C: ConnectionTrait>(
        &self,
        txn: &C,
        tenant: &Tenant,
        workflows: &BTreeSet<String>,
        fresh: &HashSet<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<Admission, EngineError> {
        let mut out = Admission::default();
        for wf in workflows {
            out.merge(self.admit_workflow(txn, tenant, wf, fresh, now).await?);
        }
        Ok(out)
    }

    async fn admit_workflow<C: ConnectionTrait>(
        &self,
        txn: &C,
        tenant: &Tenant,
        workflow: &str,
        fresh: &HashSet<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<Admission, EngineError> {
        let backend = self.store.backend();
        let db_now = self.db_now(now);
        gates::lock_workflow(txn, backend, tenant, workflow).await?;
        let settings =
            workflows::latest(txn, tenant, workflow).await?.map(|v| v.definition.settings).unwrap_or_default();
        let (running, queued) = gates::of_workflow(txn, tenant, workflow, QUEUED_SCAN).await?;
        let mut counts =
            Counts { settings: &settings, running: Vec::new(), per_key: HashMap::new(), schedules: HashSet::new() };
        for g in &running {
            counts.add(g);
        }
        // Runs of a buffered schedule that run without a gate (made before it buffered) count too.
        for sched in queued.iter().filter_map(|g| g.schedule_id).collect::<BTreeSet<_>>() {
            if gates::schedule_has_running(txn, tenant, sched).await? {
                counts.schedules.insert(sched);
            }
        }
        let mut out = Admission::default();
        let mut admit: Vec<&run_gate::Model> = Vec::new();
        let mut reasons: Vec<(Uuid, String)> = Vec::new();
        let mut cancel: Vec<(Uuid, String)> = Vec::new();
        let mut evicted: HashSet<Uuid> = HashSet::new();
        for g in &queued {
            match counts.blocked(workflow, g) {
                None => {
                    counts.add(g);
                    admit.push(g);
                }
                Some(Blocked::Schedule { why }) => reasons.push((g.run_id, why)),
                Some(Blocked::Limit { why, victims }) => match settings.concurrency_policy {
                    ConcurrencyPolicy::Queue => reasons.push((g.run_id, why)),
                    ConcurrencyPolicy::CancelNewest if fresh.contains(&g.run_id) => {
                        cancel.push((g.run_id, format!("{why} (concurrency_policy cancel_newest)")))
                    }
                    // Queued before the policy changed: it waits its turn.
                    ConcurrencyPolicy::CancelNewest => reasons.push((g.run_id, why)),
                    ConcurrencyPolicy::CancelInProgress => match victims.into_iter().find(|v| !evicted.contains(v)) {
                        Some(victim) => {
                            evicted.insert(victim);
                            out.evict.push((
                                victim,
                                format!(
                                    "cancelled to make room for run {} (concurrency_policy cancel_in_progress)",
                                    g.run_id
                                ),
                            ));
                            reasons.push((g.run_id, format!("{why}; run {victim} is being cancelled to make room")));
                        }
                        None => reasons.push((g.run_id, why)),
                    },
                },
            }
        }
        // Start what fits (a queued run being cancelled right now is skipped: its cancel wins).
        let ids: Vec<Uuid> = admit.iter().map(|g| g.run_id).collect();
        let locked = gates::lock_queued_runs(txn, backend, tenant, &ids).await?;
        let started: Vec<Uuid> = locked.iter().map(|r| r.id).collect();
        gates::start_runs(txn, tenant, &started, db_now).await?;
        let roots = gates::release_roots(txn, tenant, &started, db_now).await?;
        for run in &locked {
            let mut log = vec![NewEvent::run("run_started", json!({"queued_since": run.created_at}))];
            for t in roots.iter().filter(|t| t.run_id == run.id) {
                log.push(NewEvent::task("task_ready", &t.name, None, json!({})));
                out.ready.push((crate::queue::lane(&t.task_type, Priority::from_rank(t.priority)), t.id));
            }
            events::append(txn, tenant, run.id, &log, now).await?;
        }
        out.started.extend(started);
        for (id, why) in reasons.iter().filter(|(id, _)| fresh.contains(id)) {
            gates::set_reason(txn, tenant, *id, why).await?;
        }
        for (id, why) in cancel {
            self.cancel_queued(txn, tenant, id, &why, now).await?;
            out.cancelled.insert(id);
        }
        Ok(out)
    }

    /// Cancels a queued run created by this transaction (nothing of it has run).
    async fn cancel_queued<C: ConnectionTrait>(
        &self,
        txn: &C,
        tenant: &Tenant,
        run_id: Uuid,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let db_now = self.db_now(now);
        let tasks = progress::tasks_of_run(txn, tenant, run_id).await?;
        let ids: Vec<Uuid> = tasks.iter().map(|t| t.id).collect();
        progress::set_task_state(txn, &ids, &[TaskState::Pending], TaskState::Cancelled, db_now).await?;
        progress::set_run_state(
            txn,
            tenant,
            run_id,
            &[RunState::Queued],
            RunState::Cancelled,
            None,
            Some(why.to_owned()),
            db_now,
        )
        .await?;
        gates::remove(txn, tenant, &[run_id]).await?;
        let mut log: Vec<NewEvent> =
            tasks.iter().map(|t| NewEvent::task("task_cancelled", &t.name, None, json!({}))).collect();
        log.push(NewEvent::run("run_cancelled", json!({"reason": why})));
        events::append(txn, tenant, run_id, &log, now).await?;
        Ok(())
    }

    /// After runs ended in this transaction: their gates go, and each workflow they free a slot
    /// in (or a buffered schedule they held up) admits what now fits.
    pub(super) async fn release_slots<C: ConnectionTrait>(
        &self,
        txn: &C,
        tenant: &Tenant,
        ended: &[EndedRun],
        now: DateTime<Utc>,
    ) -> Result<Admission, EngineError> {
        let gated: Vec<Uuid> = ended.iter().filter(|r| r.gated).map(|r| r.id).collect();
        let mut workflows: BTreeSet<String> = gates::remove(txn, tenant, &gated).await?.into_iter().collect();
        for r in ended.iter().filter(|r| !r.gated) {
            if let Some(sched) = r.schedule_id
                && gates::schedule_has_queued(txn, tenant, &r.workflow_name, sched).await?
            {
                workflows.insert(r.workflow_name.clone());
            }
        }
        if workflows.is_empty() {
            return Ok(Admission::default());
        }
        self.admit(txn, tenant, &workflows, &HashSet::new(), now).await
    }

    /// Admits what fits in every workflow with queued runs, each in a transaction of its own: a
    /// safety net for what no run's end admitted (a limit raised by a new version, a queued run
    /// that was locked by a cancel when its turn came). Returns how many runs started.
    pub async fn admit_queued_once(&self) -> Result<usize, EngineError> {
        let mut started = 0;
        for (tenant, workflow) in gates::workflows_with_queued(self.store.conn(), SWEEP_WORKFLOWS).await? {
            let txn = self.store.begin().await?;
            let one = BTreeSet::from([workflow]);
            let mut out = self.admit(&txn, &tenant, &one, &HashSet::new(), self.now()).await?;
            txn.commit().await.map_err(crate::store::StoreError::from)?;
            started += out.started.len();
            self.publish(&tenant, &std::mem::take(&mut out.ready)).await;
            self.evict(&tenant, out.evict).await;
        }
        Ok(started)
    }

    /// Cancels the runs admission chose to make room for newer ones (after its commit).
    pub(super) async fn evict(&self, tenant: &Tenant, evict: Vec<(Uuid, String)>) {
        for (run_id, why) in evict {
            match self.cancel_run(tenant, run_id, &why).await {
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(run = %run_id, error = %e, "cannot cancel a run to make room; it will end on its own")
                }
            }
        }
    }
}

/// A run that ended in a transaction, as admission needs it.
#[derive(Debug, Clone)]
pub(super) struct EndedRun {
    pub id: Uuid,
    pub workflow_name: String,
    pub gated: bool,
    pub schedule_id: Option<Uuid>,
}

impl EndedRun {
    /// Whether its end may let a queued run start.
    pub(super) fn matters(&self) -> bool {
        self.gated || self.schedule_id.is_some()
    }
}
