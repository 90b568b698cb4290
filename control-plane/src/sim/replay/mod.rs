//! Replay: a recorded run's outcomes fed back through the real engine (no workers), and the trace it makes.
//!
//! Two ways to drive it. `exact` repeats the recording's own inputs in their recorded order
//! (leases, results, expiries, cancels, redrives) and compares the engine's decisions with
//! the recorded events. `waves` plays any definition version as fast as it can go, every ready
//! task leased at once, each attempt ending as recorded, so that two versions can be compared
//! (`diff`).

mod diff;
mod exact;
mod waves;

pub use diff::{Difference, diff};
pub use exact::{Divergence, ExactReplay, replay_exact};
pub use waves::replay_waves;

use super::SimError;
use super::setup::{self, Deployment};
use crate::domain::definition::WorkflowDefinition;
use crate::domain::flow::Priority;
use crate::domain::records::{RunDetail, RunEvent, TaskError, Tenant};
use crate::domain::state::{RunState, TaskState};
use crate::engine::complete::{Outcome, Verdict};
use crate::engine::trigger::TriggerRequest;
use crate::engine::{Clock, Engine, Sabotage};
use crate::store::leases::LeaseKey;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use uuid::Uuid;

/// What was recorded of one run.
#[derive(Debug, Clone)]
pub struct Recording {
    /// The run's id, for messages.
    pub run_id: String,
    pub version: u32,
    /// The definition of the recorded version.
    pub definition: WorkflowDefinition,
    pub input_json: String,
    pub priority: Priority,
    pub state: RunState,
    pub tasks: BTreeMap<String, RecordedTask>,
    /// The run's event log, in order.
    pub events: Vec<RecordedEvent>,
}

/// One task as recorded.
#[derive(Debug, Clone, Default)]
pub struct RecordedTask {
    pub state: Option<TaskState>,
    /// Its output, if it succeeded.
    pub output_json: Option<String>,
    pub attempts: Vec<RecordedAttempt>,
}

/// One recorded attempt.
#[derive(Debug, Clone)]
pub struct RecordedAttempt {
    pub attempt: u32,
    /// `succeeded`, `failed`, `lease_expired`, `released`, `cancelled`; None while running.
    pub outcome: Option<String>,
    pub error: Option<TaskError>,
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    pub sequence: u64,
    pub kind: String,
    pub task: Option<String>,
    pub attempt: Option<u32>,
}

impl Recording {
    /// The recording of a run as the engine reads it back: its detail, its events, and the
    /// definition of its version.
    pub fn of(detail: &RunDetail, events: &[RunEvent], definition: WorkflowDefinition) -> Self {
        let tasks = detail
            .tasks
            .iter()
            .map(|t| {
                let attempts = t
                    .attempts
                    .iter()
                    .map(|a| RecordedAttempt { attempt: a.attempt, outcome: a.outcome.clone(), error: a.error.clone() })
                    .collect();
                (t.name.clone(), RecordedTask { state: Some(t.state), output_json: t.output.clone(), attempts })
            })
            .collect();
        Self {
            run_id: detail.run.id.to_string(),
            version: detail.run.workflow_version,
            definition,
            input_json: detail.run.input.clone(),
            priority: detail.run.priority,
            state: detail.run.state,
            tasks,
            events: events.iter().map(RecordedEvent::of).collect(),
        }
    }
}

impl RecordedEvent {
    fn of(e: &RunEvent) -> Self {
        Self { sequence: e.sequence, kind: e.kind.clone(), task: e.task_name.clone(), attempt: e.attempt }
    }

    /// Whether the engine's decisions make this event (compared), rather than how the run was
    /// created and admitted (which depends on other runs, not on this one's outcomes).
    pub fn compared(&self) -> bool {
        !matches!(self.kind.as_str(), "run_created" | "run_started" | "run_resumed")
    }

    /// `kind task#attempt`.
    pub fn label(&self) -> String {
        let task = self.task.as_deref().map(|t| format!(" {t}")).unwrap_or_default();
        let attempt = self.attempt.map(|a| format!("#{a}")).unwrap_or_default();
        format!("{}{task}{attempt}", self.kind)
    }
}

/// How one task ended in a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskEnd {
    pub state: TaskState,
    pub attempts: u32,
    /// The round in which it was first leased (waves only).
    pub wave: Option<u32>,
    pub depends_on: Vec<String>,
}

/// The result of a replay: the engine's events, and how the run and each task ended.
#[derive(Debug, Clone)]
pub struct Replay {
    pub trace: Vec<RecordedEvent>,
    pub run_state: RunState,
    pub tasks: BTreeMap<String, TaskEnd>,
    /// What the replay had to assume (attempts without a recording).
    pub notes: Vec<String>,
}

/// The worker id every replayed lease is taken by.
const REPLAY_WORKER: &str = "replay";

/// A one-run deployment driven by hand.
struct Driver {
    dep: Deployment,
    engine: Engine,
    tenant: Tenant,
    run_id: Uuid,
    /// Current leases by task name, with when each expires.
    held: BTreeMap<String, (LeaseKey, DateTime<Utc>)>,
}

impl Driver {
    /// A fresh deployment with `def` stored and one run of it triggered with the recording's input.
    async fn start(def: &WorkflowDefinition, rec: &Recording) -> Result<Self, SimError> {
        let dep = Deployment::start(0, 1, setup::settings(), Sabotage::None).await?;
        let engine = dep.engines[0].clone();
        let tenant = Tenant::default_tenant();
        engine.put_workflow(&tenant, def).await?;
        let req = TriggerRequest {
            workflow_name: def.name.clone(),
            input_json: rec.input_json.clone(),
            priority: Some(rec.priority),
            ..TriggerRequest::default()
        };
        let run_id = engine
            .trigger_runs(&tenant, &[req])
            .await?
            .first()
            .map(|t| t.run_id)
            .ok_or_else(|| SimError::Setup("the trigger made no run".into()))?;
        Ok(Self { dep, engine, tenant, run_id, held: BTreeMap::new() })
    }

    async fn detail(&self) -> Result<RunDetail, SimError> {
        Ok(self.engine.get_run(&self.tenant, self.run_id).await?)
    }

    fn now(&self) -> DateTime<Utc> {
        self.dep.clock.now()
    }

    /// Leases the ready tasks `names` (in that order), waiting out a backoff if they are in
    /// one; returns what was leased as (task name, attempt).
    async fn lease(&mut self, names: &[String]) -> Result<Vec<(String, u32)>, SimError> {
        let detail = self.detail().await?;
        let chosen: Vec<_> = detail.tasks.iter().filter(|t| names.contains(&t.name)).collect();
        if let Some(due) = chosen.iter().filter(|t| t.state == TaskState::Ready).map(|t| t.available_at).max() {
            self.dep.clock.advance_to(due);
        }
        let ids: Vec<Uuid> = names.iter().filter_map(|n| chosen.iter().find(|t| &t.name == n).map(|t| t.id)).collect();
        let leased = self.engine.lease(&self.tenant, REPLAY_WORKER, &ids).await?;
        let expires = self.now() + ttl();
        let mut out = Vec::with_capacity(leased.len());
        for a in leased {
            out.push((a.task_name.clone(), a.key.attempt));
            self.held.insert(a.task_name, (a.key, expires));
        }
        Ok(out)
    }

    /// Ends the current attempt of `task` with `outcome`; false if the engine turned it away.
    async fn complete(&mut self, task: &str, outcome: Outcome) -> Result<bool, SimError> {
        let Some((key, _)) = self.held.remove(task) else { return Ok(false) };
        let verdict = self.engine.complete(&self.tenant, key, outcome).await?;
        Ok(verdict == Verdict::Accepted)
    }

    /// Lets the lease of `task` expire and runs the reaper. Every other held lease is extended
    /// first, so that only this one expires.
    async fn expire(&mut self, task: &str) -> Result<bool, SimError> {
        let Some((_, expires)) = self.held.remove(task) else { return Ok(false) };
        // A millisecond on, the others are extended to a TTL from now: later than `expires`.
        self.dep.clock.advance_to(self.now() + chrono::Duration::milliseconds(1));
        let others: Vec<LeaseKey> = self.held.values().map(|(k, _)| *k).collect();
        if !others.is_empty() {
            self.engine.heartbeat(&self.tenant, REPLAY_WORKER, &others, &[]).await?;
            let extended = self.now() + ttl();
            for (_, e) in self.held.values_mut() {
                *e = extended;
            }
        }
        let target = expires.max(self.now()) + chrono::Duration::microseconds(1);
        self.dep.clock.advance_to(target);
        Ok(self.engine.reap_once().await? > 0)
    }

    /// Hands the lease of `task` back unused.
    async fn release(&mut self, task: &str) -> Result<(), SimError> {
        if let Some((key, _)) = self.held.remove(task) {
            self.engine.release(&self.tenant, &[key]).await?;
        }
        Ok(())
    }

    /// The run's events, the run's state and how each task ended; closes the deployment.
    async fn finish(self, waves: &BTreeMap<String, u32>, notes: Vec<String>) -> Result<Replay, SimError> {
        let (events, run) = self.engine.run_events(&self.tenant, self.run_id, 0, 100_000).await?;
        let detail = self.detail().await?;
        let tasks = detail
            .tasks
            .iter()
            .map(|t| {
                let end = TaskEnd {
                    state: t.state,
                    attempts: t.attempt,
                    wave: waves.get(&t.name).copied(),
                    depends_on: t.depends_on.clone(),
                };
                (t.name.clone(), end)
            })
            .collect();
        self.dep.close().await;
        Ok(Replay { trace: events.iter().map(RecordedEvent::of).collect(), run_state: run.state, tasks, notes })
    }
}

/// The lease TTL of replays.
fn ttl() -> chrono::Duration {
    chrono::Duration::from_std(setup::settings().lease_ttl).unwrap_or_default()
}

/// The outcome recorded for attempt `n` of `task`, as the engine takes it.
fn recorded_outcome(rec: &Recording, task: &str, n: u32) -> Option<Planned> {
    let t = rec.tasks.get(task)?;
    let a = t.attempts.iter().find(|a| a.attempt == n)?;
    match a.outcome.as_deref()? {
        "succeeded" => Some(Planned::Result(Outcome::Succeeded {
            output_json: t.output_json.clone().unwrap_or_else(|| "null".into()),
        })),
        "failed" => Some(Planned::Result(Outcome::Failed(a.error.clone().unwrap_or_else(|| TaskError {
            message: "failed (no error recorded)".into(),
            kind: "unknown".into(),
            retryable: true,
            details: None,
        })))),
        "lease_expired" => Some(Planned::Expire),
        "released" => Some(Planned::Release),
        _ => None,
    }
}

/// How a replayed attempt ends.
#[derive(Debug, Clone, PartialEq)]
enum Planned {
    Result(Outcome),
    Expire,
    Release,
}
