//! One simulation: the agenda of actions in virtual time, carried out one at a time against the engines.

use super::entropy::Seeded;
use super::faults::{self, Fault, Strike};
use super::ledger::{Ack, Leased, Ledger, Sent};
use super::log::{EventLog, Names};
use super::setup::{self, Deployment};
use super::worker::{Job, Planned, SimWorker};
use super::{SimConfig, SimError, SimReport, invariants};
use crate::domain::definition::WorkflowDefinition;
use crate::domain::flow::{OverlapPolicy, Priority};
use crate::domain::records::{RunFilter, TaskError, Tenant};
use crate::domain::schedule::ScheduleSpec;
use crate::domain::state::RunState;
use crate::engine::complete::{Outcome, Verdict};
use crate::engine::trigger::TriggerRequest;
use crate::engine::{Clock, Engine, ExecSettings};
use crate::queue::DispatchQueue;
use crate::store::leases::LeaseKey;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

/// Simulated control planes (two, so that their passes race over one store).
const CONTROL_PLANES: usize = 2;
/// Slots of each simulated worker.
const SLOTS: usize = 4;
/// How often an idle worker looks at the queue.
const POLL: Duration = Duration::from_millis(250);
/// How often the control planes' loops run, and how long a caller waits before trying again.
const TICK: Duration = Duration::from_secs(1);
/// How long the system may take to drain once faults stop before a run counts as stuck.
const DRAIN_LIMIT: Duration = Duration::from_secs(15 * 60);
/// The chance that a call's answer is lost while `lost-answer` is on.
const LOST_ANSWER_CHANCE: f64 = 0.05;

/// Something that happens at an instant.
#[derive(Debug, Clone)]
enum Action {
    Trigger(usize),
    Poll(usize),
    Finish(usize, u64),
    Heartbeat(usize),
    Reap(usize),
    Reconcile(usize),
    Cron(usize),
    Strike(Strike),
    Restart(usize),
    Resume(usize),
    DuplicatesEnd,
    EndFaults,
    Check,
}

/// Whether a call to the store goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    Open,
    /// The store is down: the call fails before doing anything.
    Down,
    /// The call is carried out, but its answer is lost on the way back.
    AnswerLost,
}

pub struct World {
    seed: u64,
    /// Replay every ended run at the end and compare (see `invariants::replays`).
    replay: bool,
    dep: Deployment,
    tenant: Tenant,
    rng: Seeded,
    settings: ExecSettings,
    start: DateTime<Utc>,
    agenda: BTreeMap<(DateTime<Utc>, u64), Action>,
    seq: u64,
    workers: Vec<SimWorker>,
    lanes: Vec<String>,
    triggers: Vec<TriggerRequest>,
    names: Names,
    log: EventLog,
    ledger: Ledger,
    schedule: Option<Uuid>,
    faults_on: bool,
    lost_answers: bool,
    outage_until: Option<DateTime<Utc>>,
    drain_limit: DateTime<Utc>,
    done: bool,
}

impl World {
    /// The deployment, the workflow and schedule stored, and the first actions on the agenda.
    pub async fn build(cfg: &SimConfig) -> Result<Self, SimError> {
        let settings = setup::settings();
        let dep = Deployment::start(cfg.seed, CONTROL_PLANES, settings, cfg.sabotage).await?;
        let start = dep.clock.now();
        let tenant = Tenant::default_tenant();
        let rng = Seeded::new(cfg.seed, 0);
        let def = cfg.workflow.clone().unwrap_or_else(setup::default_workflow);
        let engine = &dep.engines[0];
        engine.put_workflow(&tenant, &def).await?;
        let mut log = EventLog::new(start);
        log.line(&format!(
            "braid simulate --seed {} --workers {} --runs {} --duration {} --faults {} --sabotage {}",
            cfg.seed,
            cfg.workers,
            cfg.runs,
            humantime::format_duration(cfg.duration),
            if cfg.faults.is_empty() {
                "none".to_owned()
            } else {
                cfg.faults.iter().map(|f| f.name()).collect::<Vec<_>>().join(",")
            },
            cfg.sabotage.name()
        ));
        let spec = ScheduleSpec {
            name: "sim-cron".into(),
            workflow_name: def.name.clone(),
            cron: "*/15 * * * * *".into(),
            timezone: String::new(),
            input_json: r#"{"cron":true}"#.into(),
            overlap: OverlapPolicy::AllowAll,
            paused: false,
            start_at: None,
            end_at: None,
            catchup_window: None,
            catchup: Default::default(),
            priority: Priority::Normal,
        };
        let schedule = engine.create_schedule(&tenant, &spec).await?.schedule.id;

        let mut types: Vec<String> = def.tasks.iter().map(|t| t.task_type.clone()).collect();
        types.sort();
        types.dedup();
        let lanes = [Priority::High, Priority::Normal, Priority::Low]
            .into_iter()
            .flat_map(|p| crate::queue::lanes(&types, p))
            .collect();
        let workers = (0..cfg.workers.max(1)).map(|i| SimWorker::new(i, i % CONTROL_PLANES, SLOTS)).collect();
        let triggers = plan_triggers(cfg, &def, &rng);
        let strikes = faults::plan(&cfg.faults, cfg.duration, settings.lease_ttl, &rng);
        let end = start + chrono::Duration::from_std(cfg.duration).unwrap_or(chrono::Duration::MAX);
        let mut world = Self {
            seed: cfg.seed,
            replay: cfg.replay,
            dep,
            tenant,
            rng,
            settings,
            start,
            agenda: BTreeMap::new(),
            seq: 0,
            workers,
            lanes,
            triggers,
            names: Names::default(),
            log,
            ledger: Ledger::default(),
            schedule: Some(schedule),
            faults_on: true,
            lost_answers: cfg.faults.contains(&Fault::LostAnswer),
            outage_until: None,
            drain_limit: end + chrono::Duration::from_std(DRAIN_LIMIT).unwrap_or(chrono::Duration::MAX),
            done: false,
        };
        for (i, at) in plan_times(&world.rng, cfg.runs, cfg.duration).into_iter().enumerate() {
            world.at(at, Action::Trigger(i));
        }
        for w in 0..world.workers.len() {
            world.at(Duration::from_millis(37 * w as u64), Action::Poll(w));
            world.at(settings.heartbeat_interval, Action::Heartbeat(w));
        }
        for cp in 0..CONTROL_PLANES {
            let offset = TICK / 2 * cp as u32;
            world.at(TICK + offset, Action::Reap(cp));
            world.at(TICK + offset + Duration::from_millis(100), Action::Reconcile(cp));
            world.at(TICK + offset + Duration::from_millis(200), Action::Cron(cp));
        }
        for s in strikes {
            world.at(s.at, Action::Strike(s));
        }
        world.at(cfg.duration, Action::EndFaults);
        Ok(world)
    }

    /// Carries out the agenda until the system has drained (or the drain limit passes), then
    /// checks the invariants.
    pub async fn run(mut self) -> Result<SimReport, SimError> {
        while !self.done {
            let Some(((t, _), action)) = self.agenda.pop_first() else { break };
            if t > self.drain_limit {
                break;
            }
            self.dep.clock.advance_to(t);
            self.act(action).await?;
        }
        let now = self.now();
        self.log.at(now, "end of simulation");
        let mut violations =
            invariants::check(&self.dep.engines[0], &self.tenant, &self.ledger, &mut self.names, &mut self.log).await?;
        if self.replay {
            violations.extend(invariants::replays(&self.dep.engines[0], &self.tenant, &mut self.names).await?);
        }
        let summary = invariants::summary(&self.dep.engines[0], &self.tenant, &self.ledger).await?;
        self.log.line(&format!("summary: {summary}"));
        for v in &violations {
            self.log.line(&format!("VIOLATION {v}"));
        }
        self.dep.close().await;
        Ok(SimReport { seed: self.seed, log: self.log.into_text(), violations, summary })
    }

    fn now(&self) -> DateTime<Utc> {
        self.dep.clock.now()
    }

    /// Puts `action` on the agenda `after` the start.
    fn at(&mut self, after: Duration, action: Action) {
        let t = self.start + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
        self.seq += 1;
        self.agenda.insert((t, self.seq), action);
    }

    /// Puts `action` on the agenda `after` now.
    fn later(&mut self, after: Duration, action: Action) {
        let t = self.now() + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
        self.seq += 1;
        self.agenda.insert((t, self.seq), action);
    }

    fn note(&mut self, line: &str) {
        let now = self.now();
        self.log.at(now, line);
    }

    fn engine(&self, cp: usize) -> Engine {
        self.dep.engines[cp % self.dep.engines.len()].clone()
    }

    /// Whether the next call reaches the store, and whether its answer comes back.
    fn gate(&mut self) -> Gate {
        if self.outage_until.is_some_and(|until| self.now() < until) {
            return Gate::Down;
        }
        if self.lost_answers && self.faults_on && self.rng.chance(LOST_ANSWER_CHANCE) {
            return Gate::AnswerLost;
        }
        Gate::Open
    }

    fn task_label(&mut self, run_id: Uuid, task: &str, attempt: u32) -> String {
        format!("{}/{task}#{attempt}", self.names.name("r", run_id))
    }

    async fn act(&mut self, action: Action) -> Result<(), SimError> {
        match action {
            Action::Trigger(i) => self.trigger(i).await,
            Action::Poll(w) => self.poll(w).await,
            Action::Finish(w, job) => self.finish(w, job).await,
            Action::Heartbeat(w) => self.heartbeat(w).await,
            Action::Reap(cp) => self.reap(cp).await,
            Action::Reconcile(cp) => self.reconcile(cp).await,
            Action::Cron(cp) => self.cron(cp).await,
            Action::Strike(s) => self.strike(s).await,
            Action::Restart(w) => {
                self.restart(w);
                Ok(())
            }
            Action::Resume(w) => self.resume(w).await,
            Action::DuplicatesEnd => {
                self.dep.queue.set_duplicate(false);
                self.note("queue: duplicate delivery ends");
                Ok(())
            }
            Action::EndFaults => self.end_faults().await,
            Action::Check => self.check().await,
        }
    }

    async fn trigger(&mut self, i: usize) -> Result<(), SimError> {
        let req = self.triggers[i].clone();
        let key = req.idempotency_key.clone().unwrap_or_else(|| "-".into());
        if let Some(k) = &req.idempotency_key
            && !self.ledger.keys.contains(k)
        {
            self.ledger.keys.push(k.clone());
        }
        let gate = self.gate();
        if gate == Gate::Down {
            self.note(&format!("client trigger #{i} key {key}: store unavailable, retrying"));
            self.later(TICK, Action::Trigger(i));
            return Ok(());
        }
        let answer = self.engine(i).trigger_runs(&self.tenant, std::slice::from_ref(&req)).await;
        if gate == Gate::AnswerLost {
            self.note(&format!("client trigger #{i} key {key}: answer lost, retrying"));
            self.later(TICK, Action::Trigger(i));
            return Ok(());
        }
        match answer {
            Ok(done) => {
                for t in done {
                    let run = self.names.name("r", t.run_id);
                    let how = if t.created { "created" } else { "existing" };
                    self.note(&format!("client trigger #{i} key {key}: {run} ({how}, {})", t.state));
                    self.ledger.acks.push(Ack { key: req.idempotency_key.clone(), run_id: t.run_id });
                }
            }
            Err(e) => {
                let e = self.names.scrub(&e.to_string());
                self.note(&format!("client trigger #{i} key {key}: error {e}, retrying"));
                self.later(TICK, Action::Trigger(i));
            }
        }
        Ok(())
    }

    async fn poll(&mut self, w: usize) -> Result<(), SimError> {
        self.later(POLL, Action::Poll(w));
        let worker = &self.workers[w];
        let free = worker.free_slots();
        if !worker.active() || free == 0 {
            return Ok(());
        }
        let (id, cp) = (worker.id(), worker.control_plane);
        let queue = self.dep.queue.clone();
        let tenant = self.tenant.as_str().to_owned();
        let deliveries = queue.read(&tenant, &self.lanes, &id, free, Duration::ZERO).await.unwrap_or_default();
        if deliveries.is_empty() {
            return Ok(());
        }
        let _ = queue.ack(&tenant, &deliveries).await;
        let mut ids: Vec<Uuid> = deliveries.iter().map(|d| d.task_id).collect();
        ids.dedup();
        let gate = self.gate();
        if gate == Gate::Down {
            self.note(&format!("{id} lease of {} entries: store unavailable (entries dropped)", ids.len()));
            return Ok(());
        }
        let answer = self.engine(cp).lease(&self.tenant, &id, &ids).await;
        if gate == Gate::AnswerLost {
            self.note(&format!("{id} lease of {} entries: answer lost", ids.len()));
            return Ok(());
        }
        let assignments = match answer {
            Ok(a) => a,
            Err(e) => {
                let e = self.names.scrub(&e.to_string());
                self.note(&format!("{id} lease: error {e}"));
                return Ok(());
            }
        };
        for a in assignments {
            let label = self.task_label(a.run_id, &a.task_name, a.key.attempt);
            let lease = self.names.name("L", a.key.lease_id);
            let (plan, took) = self.plan_attempt(&id, &a.task_name, a.key.attempt);
            let what = match &plan {
                Planned::Succeed { .. } => "succeed".to_owned(),
                Planned::Fail { retryable } => format!("fail (retryable: {retryable})"),
            };
            self.note(&format!("{id} leased {label} {lease}: will {what} after {}ms", took.as_millis()));
            self.ledger.leases.push(Leased { key: a.key, worker: id.clone() });
            let job = Job { key: a.key, run_id: a.run_id, task: a.task_name.clone(), plan, finished: false };
            let n = self.workers[w].hold(job);
            self.later(took, Action::Finish(w, n));
        }
        Ok(())
    }

    /// How an attempt will end and how long it takes, drawn from the seed.
    fn plan_attempt(&self, worker: &str, task: &str, attempt: u32) -> (Planned, Duration) {
        let roll = self.rng.between(0, 99);
        let plan = match roll {
            0..=1 => Planned::Fail { retryable: false },
            2..=11 => Planned::Fail { retryable: true },
            _ => {
                Planned::Succeed { output_json: format!(r#"{{"by":"{worker}","task":"{task}","attempt":{attempt}}}"#) }
            }
        };
        // Mostly short; now and then longer than the lease TTL (heartbeats must keep it).
        let ms = if self.rng.chance(0.05) { self.rng.between(10_000, 25_000) } else { self.rng.between(20, 3_000) };
        (plan, Duration::from_millis(ms))
    }

    async fn finish(&mut self, w: usize, n: u64) -> Result<(), SimError> {
        let worker = &mut self.workers[w];
        let id = worker.id();
        let stalled = worker.stalled;
        let Some(job) = worker.jobs.get_mut(&n) else { return Ok(()) };
        if stalled {
            job.finished = true;
            let (run_id, task, attempt) = (job.run_id, job.task.clone(), job.key.attempt);
            let label = self.task_label(run_id, &task, attempt);
            self.note(&format!("{id} finished {label} while stalled; its result waits"));
            return Ok(());
        }
        self.send(w, n).await
    }

    /// Sends the result of job `n` of worker `w`.
    async fn send(&mut self, w: usize, n: u64) -> Result<(), SimError> {
        let worker = &self.workers[w];
        let Some(job) = worker.jobs.get(&n).cloned() else { return Ok(()) };
        let (id, cp) = (worker.id(), worker.control_plane);
        let label = self.task_label(job.run_id, &job.task, job.key.attempt);
        let (outcome, kind, output_json) = match &job.plan {
            Planned::Succeed { output_json } => {
                (Outcome::Succeeded { output_json: output_json.clone() }, "succeeded", Some(output_json.clone()))
            }
            Planned::Fail { retryable } => (
                Outcome::Failed(TaskError {
                    message: format!("simulated failure of {}", job.task),
                    kind: if *retryable { "sim.transient".into() } else { "sim.permanent".into() },
                    retryable: *retryable,
                    details: None,
                }),
                "failed",
                None,
            ),
        };
        let gate = self.gate();
        if gate == Gate::Down {
            self.note(&format!("{id} result {label} {kind}: store unavailable, resending"));
            self.later(TICK, Action::Finish(w, n));
            return Ok(());
        }
        let answer = self.engine(cp).complete(&self.tenant, job.key, outcome).await;
        if gate == Gate::AnswerLost {
            self.note(&format!("{id} result {label} {kind}: answer lost, resending"));
            self.later(TICK, Action::Finish(w, n));
            return Ok(());
        }
        match answer {
            Ok(verdict) => {
                self.workers[w].jobs.remove(&n);
                let accepted = verdict == Verdict::Accepted;
                let said = match verdict {
                    Verdict::Accepted => "accepted".to_owned(),
                    Verdict::Stale { reason } => format!("stale ({})", self.names.scrub(&reason)),
                };
                self.note(&format!("{id} result {label} {kind}: {said}"));
                self.ledger.sent.push(Sent { key: job.key, worker: id, outcome: kind, output_json, accepted });
            }
            Err(e) => {
                let e = self.names.scrub(&e.to_string());
                self.note(&format!("{id} result {label} {kind}: error {e}, resending"));
                self.later(TICK, Action::Finish(w, n));
            }
        }
        Ok(())
    }

    async fn heartbeat(&mut self, w: usize) -> Result<(), SimError> {
        self.later(self.settings.heartbeat_interval, Action::Heartbeat(w));
        let worker = &self.workers[w];
        if !worker.active() || worker.jobs.is_empty() {
            return Ok(());
        }
        let (id, cp) = (worker.id(), worker.control_plane);
        let held: Vec<LeaseKey> = worker.jobs.values().map(|j| j.key).collect();
        let gate = self.gate();
        if gate == Gate::Down {
            self.note(&format!("{id} heartbeat: store unavailable"));
            return Ok(());
        }
        let answer = self.engine(cp).heartbeat(&self.tenant, &id, &held, &[]).await;
        if gate == Gate::AnswerLost {
            self.note(&format!("{id} heartbeat: answer lost"));
            return Ok(());
        }
        match answer {
            Ok(outcome) if !outcome.stale.is_empty() => {
                let dropped: Vec<Job> =
                    self.workers[w].jobs.values().filter(|j| outcome.stale.contains(&j.key)).cloned().collect();
                self.workers[w].drop_leases(&outcome.stale);
                for j in dropped {
                    let label = self.task_label(j.run_id, &j.task, j.key.attempt);
                    self.note(&format!("{id} heartbeat: {label} is no longer current, dropped"));
                }
            }
            Ok(_) => {}
            Err(e) => {
                let e = self.names.scrub(&e.to_string());
                self.note(&format!("{id} heartbeat: error {e}"));
            }
        }
        Ok(())
    }

    async fn reap(&mut self, cp: usize) -> Result<(), SimError> {
        self.later(TICK, Action::Reap(cp));
        if self.gate() != Gate::Open {
            return Ok(());
        }
        match self.engine(cp).reap_once().await {
            Ok(0) => {}
            Ok(n) => self.note(&format!("cp{} reaper: {n} expired lease(s) recovered", cp + 1)),
            Err(e) => {
                let e = self.names.scrub(&e.to_string());
                self.note(&format!("cp{} reaper: error {e}", cp + 1));
            }
        }
        Ok(())
    }

    async fn reconcile(&mut self, cp: usize) -> Result<(), SimError> {
        self.later(TICK, Action::Reconcile(cp));
        if self.gate() != Gate::Open {
            return Ok(());
        }
        match self.engine(cp).reconcile_once().await {
            Ok(0) => {}
            Ok(n) => self.note(&format!("cp{} reconciler: {n} task(s) published again", cp + 1)),
            Err(e) => {
                let e = self.names.scrub(&e.to_string());
                self.note(&format!("cp{} reconciler: error {e}", cp + 1));
            }
        }
        Ok(())
    }

    async fn cron(&mut self, cp: usize) -> Result<(), SimError> {
        self.later(TICK, Action::Cron(cp));
        if self.gate() != Gate::Open {
            return Ok(());
        }
        match self.engine(cp).scheduler_pass().await {
            Ok(Some(r)) if r.fired + r.skipped + r.missed > 0 => self.note(&format!(
                "cp{} scheduler: {} fired, {} skipped, {} missed",
                cp + 1,
                r.fired,
                r.skipped,
                r.missed
            )),
            Ok(_) => {}
            Err(e) => {
                let e = self.names.scrub(&e.to_string());
                self.note(&format!("cp{} scheduler: error {e}", cp + 1));
            }
        }
        Ok(())
    }

    async fn strike(&mut self, s: Strike) -> Result<(), SimError> {
        if !self.faults_on {
            return Ok(());
        }
        let length = humantime::format_duration(s.length).to_string();
        match s.fault {
            Fault::WorkerCrash => {
                let up: Vec<usize> = (0..self.workers.len()).filter(|w| self.workers[*w].up).collect();
                let Some(&w) = up.get(self.rng.index(up.len())) else { return Ok(()) };
                let (id, held) = (self.workers[w].id(), self.workers[w].jobs.len());
                self.workers[w].crash();
                self.note(&format!("FAULT worker-crash: {id} dies holding {held} lease(s); back in {length}"));
                self.later(s.length, Action::Restart(w));
            }
            Fault::WorkerStall => {
                let active: Vec<usize> = (0..self.workers.len()).filter(|w| self.workers[*w].active()).collect();
                let Some(&w) = active.get(self.rng.index(active.len())) else { return Ok(()) };
                let (id, held) = (self.workers[w].id(), self.workers[w].jobs.len());
                self.workers[w].stalled = true;
                self.note(&format!("FAULT worker-stall: {id} stops for {length} holding {held} lease(s)"));
                self.later(s.length, Action::Resume(w));
            }
            Fault::RedisFlush => {
                let lost = self.dep.queue.flush();
                self.note(&format!("FAULT redis-flush: {lost} queue entries lost"));
            }
            Fault::DuplicateDelivery => {
                self.dep.queue.set_duplicate(true);
                self.note(&format!("FAULT duplicate-delivery: every entry delivered twice for {length}"));
                self.later(s.length, Action::DuplicatesEnd);
            }
            Fault::StoreOutage => {
                self.outage_until = Some(self.now() + chrono::Duration::from_std(s.length).unwrap_or_default());
                self.note(&format!("FAULT store-outage: the database refuses every call for {length}"));
            }
            Fault::LostAnswer => {}
            Fault::Cancel => self.cancel_one().await?,
        }
        Ok(())
    }

    /// A client cancels one of the runs it started; workers holding its leases are told.
    async fn cancel_one(&mut self) -> Result<(), SimError> {
        let Some(ack) = self.ledger.acks.get(self.rng.index(self.ledger.acks.len())).cloned() else {
            return Ok(());
        };
        let run = self.names.name("r", ack.run_id);
        if self.gate() == Gate::Down {
            self.note(&format!("FAULT cancel: cancelling {run} failed: store unavailable"));
            return Ok(());
        }
        match self.engine(0).cancel_run(&self.tenant, ack.run_id, "cancelled by the simulation").await {
            Ok(out) => {
                let keys: Vec<LeaseKey> = out.revoked.iter().map(|r| r.key).collect();
                for w in &mut self.workers {
                    w.drop_leases(&keys);
                }
                self.note(&format!("FAULT cancel: {run} is {} ({} lease(s) revoked)", out.run.run.state, keys.len()));
            }
            Err(e) => {
                let e = self.names.scrub(&e.to_string());
                self.note(&format!("FAULT cancel: cancelling {run} failed: {e}"));
            }
        }
        Ok(())
    }

    fn restart(&mut self, w: usize) {
        if self.workers[w].up {
            return;
        }
        self.workers[w].restart();
        let id = self.workers[w].id();
        self.note(&format!("{id} starts (a new stream)"));
    }

    /// A stalled worker carries on: it sends the results it finished meanwhile.
    async fn resume(&mut self, w: usize) -> Result<(), SimError> {
        if !self.workers[w].stalled {
            return Ok(());
        }
        self.workers[w].stalled = false;
        let id = self.workers[w].id();
        self.note(&format!("{id} resumes"));
        let finished: Vec<u64> = self.workers[w].jobs.iter().filter(|(_, j)| j.finished).map(|(n, _)| *n).collect();
        for n in finished {
            self.send(w, n).await?;
        }
        Ok(())
    }

    async fn end_faults(&mut self) -> Result<(), SimError> {
        self.faults_on = false;
        self.outage_until = None;
        self.dep.queue.set_duplicate(false);
        self.note("faults stop; clients stop; the system drains");
        for w in 0..self.workers.len() {
            self.restart(w);
            self.resume(w).await?;
        }
        if let Some(id) = self.schedule.take() {
            self.engine(0).set_schedule_paused(&self.tenant, id, true).await?;
            self.note("schedule sim-cron paused");
        }
        self.later(TICK, Action::Check);
        Ok(())
    }

    /// Ends the simulation once no run is open.
    async fn check(&mut self) -> Result<(), SimError> {
        let filter = RunFilter { states: vec![RunState::Queued, RunState::Running], ..RunFilter::default() };
        let open = self.engine(0).list_runs(&self.tenant, &filter, 1, "").await?;
        if open.items.is_empty() {
            self.note("every run has ended");
            self.done = true;
        } else {
            self.later(TICK, Action::Check);
        }
        Ok(())
    }
}

/// When the client's triggers happen: spread over the first two thirds of the run, in order.
fn plan_times(rng: &Seeded, runs: usize, duration: Duration) -> Vec<Duration> {
    let span = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX) * 2 / 3;
    let mut times: Vec<Duration> = (0..runs).map(|_| Duration::from_millis(rng.between(0, span))).collect();
    times.sort();
    times
}

/// The client's requests: most carry an idempotency key, some repeat an earlier request.
fn plan_triggers(cfg: &SimConfig, def: &WorkflowDefinition, rng: &Seeded) -> Vec<TriggerRequest> {
    let mut out: Vec<TriggerRequest> = Vec::with_capacity(cfg.runs);
    for i in 0..cfg.runs {
        let keyed: Vec<usize> = (0..out.len()).filter(|j| out[*j].idempotency_key.is_some()).collect();
        if !keyed.is_empty() && rng.chance(0.15) {
            out.push(out[keyed[rng.index(keyed.len())]].clone());
            continue;
        }
        out.push(TriggerRequest {
            workflow_name: def.name.clone(),
            input_json: format!(r#"{{"n":{i}}}"#),
            idempotency_key: rng.chance(0.8).then(|| format!("k{i}")),
            ..TriggerRequest::default()
        });
    }
    out
}
