//! The harness: the deployment a drill starts (database, control planes, workers), its workload and its timeline.

use super::client::Api;
use super::database::DrillDatabase;
use super::monitor::Monitor;
use super::process::{ControlPlane, Ending, WorkerProc, WorkerSpec};
use super::progress::Progress;
use super::report::Check;
use super::workload::{self, Trigger, Triggers};
use super::{Config, DrillError};
use sea_orm::{EntityTrait, QuerySelect};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A drill in progress.
#[derive(Debug)]
pub struct Harness {
    pub cfg: Config,
    pub progress: Progress,
    pub db: Option<DrillDatabase>,
    pub dir: PathBuf,
    pub cps: Vec<ControlPlane>,
    pub apis: Vec<Api>,
    pub workers: Vec<WorkerProc>,
    /// Earlier generations of restarted workers.
    pub retired: Vec<WorkerProc>,
    /// Restart workers that die by themselves (poison-task).
    pub supervise: bool,
    /// Worker processes that died without the drill killing them.
    pub crashes: Vec<(Instant, String, Ending)>,
    pub monitor: Monitor,
    pub triggers: Triggers,
    pub first_fault: Option<Instant>,
    pub last_heal: Option<Instant>,
    pub settled_at: Option<Instant>,
    pub workload: String,
    pub checks: Vec<Check>,
    pub notes: Vec<String>,
    /// Tasks the fault left without a worker or a queue entry, and the database's now at the fault.
    pub stranded: Option<Stranded>,
}

/// Tasks stranded by a fault: what happened to them, when (database clock), which.
#[derive(Debug, Clone)]
pub struct Stranded {
    pub what: String,
    pub at: chrono::DateTime<chrono::Utc>,
    /// The same instant on the drill's clock.
    pub local: Instant,
    /// (task, its attempt number at the fault).
    pub tasks: Vec<(uuid::Uuid, i32)>,
}

impl Harness {
    /// Creates the work dir and the database, and starts the monitor.
    pub async fn setup(cfg: Config, progress: Progress) -> Result<Self, DrillError> {
        let dir = match &cfg.work_dir {
            Some(d) => d.clone(),
            None => {
                std::env::temp_dir().join(format!("braid-drill-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]))
            }
        };
        std::fs::create_dir_all(&dir).map_err(|source| DrillError::Io { path: dir.display().to_string(), source })?;
        let db = DrillDatabase::create(&cfg.database_url).await?;
        progress.event("setup", format!("database {} created and migrated; logs in {}", db.name, dir.display()));
        let threshold = cfg.reaper_interval + cfg.stuck_tolerance;
        let monitor = Monitor::start(db.conn.clone(), threshold);
        Ok(Self {
            cfg,
            progress,
            db: Some(db),
            dir,
            cps: Vec::new(),
            apis: Vec::new(),
            workers: Vec::new(),
            retired: Vec::new(),
            supervise: false,
            crashes: Vec::new(),
            monitor,
            triggers: Triggers::default(),
            first_fault: None,
            last_heal: None,
            settled_at: None,
            workload: String::new(),
            checks: Vec::new(),
            notes: Vec::new(),
            stranded: None,
        })
    }

    fn db_url(&self) -> String {
        self.db.as_ref().map(|d| d.url.clone()).unwrap_or_default()
    }

    fn server_args(&self, listen: SocketAddr) -> Vec<String> {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        vec![
            "--database-url".into(),
            self.db_url(),
            "--redis-url".into(),
            self.cfg.redis_url.clone(),
            "--grpc-listen".into(),
            listen.to_string(),
            "--http-listen".into(),
            "127.0.0.1:0".into(),
            "--lease-ttl".into(),
            ms(self.cfg.lease_ttl),
            "--reaper-interval".into(),
            ms(self.cfg.reaper_interval),
            "--reconcile-grace".into(),
            ms(self.cfg.reconcile_grace),
        ]
    }

    async fn spawn_cp(
        &self,
        name: &str,
        listen: SocketAddr,
        env: &[(&str, String)],
    ) -> Result<ControlPlane, DrillError> {
        let log = self.dir.join(format!("{name}.log"));
        ControlPlane::start(&self.cfg.exe, name, &self.server_args(listen), env, &log).await
    }

    /// Starts one more control plane on a free port; returns its index.
    pub async fn start_control_plane(&mut self, env: &[(&str, String)]) -> Result<usize, DrillError> {
        let name = format!("cp{}", self.cps.len() + 1);
        let cp = self.spawn_cp(&name, SocketAddr::from(([127, 0, 0, 1], 0)), env).await?;
        self.progress.event("setup", format!("control plane {name} up on {} (pid {})", cp.grpc, cp.pid()));
        self.apis.push(Api::new(&cp.endpoint())?);
        self.cps.push(cp);
        Ok(self.cps.len() - 1)
    }

    /// Starts control plane `i` again on its address (its workers reconnect to it by themselves).
    pub async fn restart_control_plane(&mut self, i: usize, env: &[(&str, String)]) -> Result<Instant, DrillError> {
        let (name, addr) = (self.cps[i].name.clone(), self.cps[i].grpc);
        let cp = self.spawn_cp(&name, addr, env).await?;
        let at = self.progress.event("heal", format!("control plane {name} restarted on {addr} (pid {})", cp.pid()));
        self.cps[i] = cp;
        Ok(at)
    }

    /// Starts workers (all at once) and waits until each has connected.
    pub async fn start_workers(&mut self, specs: &[WorkerSpec]) -> Result<(), DrillError> {
        let endpoints: Vec<String> = specs.iter().map(|s| self.cps[s.control_plane].endpoint()).collect();
        let starts = specs
            .iter()
            .zip(&endpoints)
            .map(|(s, e)| WorkerProc::start(&self.cfg.worker_bin, s, 1, e, &self.dir, true));
        for w in futures::future::join_all(starts).await {
            self.workers.push(w?);
        }
        let names: Vec<String> = specs.iter().map(|s| format!("{}×{} [{}]", s.name, s.slots, s.types)).collect();
        self.progress.event("setup", format!("workers connected: {}", names.join(", ")));
        Ok(())
    }

    /// Starts the next generation of worker `i` (the old process must have ended).
    pub async fn restart_worker(&mut self, i: usize, wait: bool) -> Result<(), DrillError> {
        let (spec, generation) = (self.workers[i].spec.clone(), self.workers[i].generation + 1);
        let endpoint = self.cps[spec.control_plane].endpoint();
        let w = WorkerProc::start(&self.cfg.worker_bin, &spec, generation, &endpoint, &self.dir, wait).await?;
        let old = std::mem::replace(&mut self.workers[i], w);
        self.retired.push(old);
        Ok(())
    }

    /// Restarts every worker that died by itself (when supervising); call it while waiting.
    pub async fn supervise_tick(&mut self) -> Result<(), DrillError> {
        if !self.supervise {
            return Ok(());
        }
        for i in 0..self.workers.len() {
            let Some(ending) = self.workers[i].poll() else { continue };
            if ending == Ending::KilledByDrill {
                continue;
            }
            let name = format!("{}.{}", self.workers[i].spec.name, self.workers[i].generation);
            let at = Instant::now();
            self.progress.event_at(at, "observed", format!("worker {name} died by itself ({ending:?}); restarting it"));
            self.crashes.push((at, name, ending));
            self.restart_worker(i, false).await?;
        }
        Ok(())
    }

    /// Tasks leased right now: (task id, attempt, lease id).
    pub async fn leased(&self) -> Result<Vec<(uuid::Uuid, i32, Option<uuid::Uuid>)>, DrillError> {
        use crate::store::entity::task;
        use sea_orm::{ColumnTrait, QueryFilter};
        let db = self.db.as_ref().map(|d| d.conn.clone()).ok_or_else(|| DrillError::Database("closed".into()))?;
        Ok(task::Entity::find()
            .select_only()
            .column(task::Column::Id)
            .column(task::Column::Attempt)
            .column(task::Column::LeaseId)
            .filter(task::Column::State.eq("leased"))
            .into_tuple()
            .all(&db)
            .await?)
    }

    /// Records the tasks in `state` now as stranded by the fault (`what` says how), with the database's now.
    /// Returns the drill's instant of that now (taken just before the query).
    pub async fn strand(&mut self, state: &str, what: &str) -> Result<Instant, DrillError> {
        use crate::store::entity::task;
        use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter};
        let db = self.db.as_ref().map(|d| d.conn.clone()).ok_or_else(|| DrillError::Database("closed".into()))?;
        let local = Instant::now();
        let stmt = sea_orm::Statement::from_string(sea_orm::DbBackend::Postgres, "SELECT now() AS now");
        let row = db.query_one_raw(stmt).await?.ok_or_else(|| DrillError::Database("SELECT now(): no row".into()))?;
        let at: chrono::DateTime<chrono::Utc> = row.try_get("", "now")?;
        let tasks: Vec<(uuid::Uuid, i32)> = task::Entity::find()
            .select_only()
            .column(task::Column::Id)
            .column(task::Column::Attempt)
            .filter(task::Column::State.eq(state))
            .into_tuple()
            .all(&db)
            .await?;
        self.stranded = Some(Stranded { what: what.to_owned(), at, local, tasks });
        Ok(local)
    }

    /// Applies the drill workflows through the first control plane.
    pub async fn apply(&self, names: &[&str]) -> Result<(), DrillError> {
        for name in names {
            self.apis[0].apply(&workload::workflow(name)).await?;
        }
        Ok(())
    }

    /// Sends triggers to the control planes in turn and keeps the acknowledgements.
    pub async fn trigger(&mut self, triggers: Vec<Trigger>, concurrency: usize) -> Triggers {
        let n = triggers.len();
        let got = workload::send_all(&self.apis, triggers, concurrency, self.cfg.deadline).await;
        self.progress.event(
            "workload",
            format!("{n} trigger(s) sent: {} acknowledged, {} given up", got.acks.len(), got.gave_up.len()),
        );
        self.triggers.extend(got.clone());
        got
    }

    /// Records a fault injected now.
    pub fn fault(&mut self, what: impl Into<String>) -> Instant {
        let at = Instant::now();
        self.fault_at(at, what);
        at
    }

    /// Records a fault injected at `at`.
    pub fn fault_at(&mut self, at: Instant, what: impl Into<String>) {
        self.progress.event_at(at, "fault", what);
        self.first_fault.get_or_insert(at);
    }

    /// Records that a fault was healed at `at`.
    pub fn healed_at(&mut self, at: Instant) {
        self.last_heal = Some(at);
    }

    /// Records a heal done now.
    pub fn heal(&mut self, what: impl Into<String>) -> Instant {
        let at = self.progress.event("heal", what);
        self.last_heal = Some(at);
        at
    }

    /// Waits for `d`, restarting crashed workers meanwhile.
    pub async fn pause(&mut self, d: Duration) -> Result<(), DrillError> {
        let until = Instant::now() + d;
        while Instant::now() < until {
            self.supervise_tick().await?;
            tokio::time::sleep(Duration::from_millis(50).min(until.saturating_duration_since(Instant::now()))).await;
        }
        Ok(())
    }
}
