//! `braid bench MODE`: the workloads (throughput, latency, dag, drain, soak) against a deployment it starts or is given.
//!
//! The bench applies its own workflows (`bench-noop`, `bench-dag`) through the API, serves them
//! with Rust workers of the braid-worker SDK in this process (over real gRPC), and counts a task
//! as complete when its worker receives the server's acceptance of the result (sent after the
//! result is committed). Latency is start − enqueue, the enqueue instant (`t_ns` in the run
//! input) taken just before the trigger call. Figures are reported, never judged.

pub mod client;
pub mod config;
pub mod dbcost;
pub mod deployment;
pub mod error;
pub mod machine;
pub mod modes;
pub mod recorder;
pub mod report;
pub mod stats;
pub mod workers;

pub use config::{Config, Mode, Sizes, Target};
pub use error::BenchError;
pub use report::Report;

use client::{Client, Submit};
use deployment::Deployment;
use recorder::{Recorder, Want};
use report::{DatabaseCost, Figures, ModeRecord};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use workers::Pool;

use crate::drill::progress::Progress;

/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// A phase with no enqueue and no completion for this long has stalled.
const STALL: Duration = Duration::from_secs(60);

/// A bench in progress: the deployment, the client, the workers and what was measured so far.
#[derive(Debug)]
pub struct Bench {
    pub sizes: Sizes,
    pub progress: Progress,
    pub client: Client,
    pub rec: Arc<Recorder>,
    pub task_type: String,
    pub figures: Figures,
    pub modes: BTreeMap<&'static str, ModeRecord>,
    pub db: DatabaseCost,
    pub notes: Vec<String>,
    deployment: Option<Deployment>,
    pool: Option<Pool>,
    probe: Option<dbcost::Probe>,
    tty: bool,
}

/// What `drive` saw: when the submission finished and when the wanted count was reached.
#[derive(Debug, Clone, Copy)]
pub struct Driven {
    pub submitted: Instant,
    pub reached: Instant,
}

impl Bench {
    pub fn deployment(&self) -> &Deployment {
        self.deployment.as_ref().expect("the deployment lives as long as the bench")
    }

    /// Bulk triggers unless `--per-call`.
    pub fn bulk(&self) -> Submit {
        if self.sizes.per_call {
            self.per_call()
        } else {
            Submit::Bulk { batch: self.sizes.batch, in_flight: self.sizes.batch_in_flight }
        }
    }

    pub fn per_call(&self) -> Submit {
        Submit::PerCall { in_flight: self.sizes.in_flight }
    }

    pub fn probe(&self) -> Option<&dbcost::Probe> {
        self.probe.as_ref()
    }

    /// A line per phase (always) on stderr.
    pub fn phase(&self, what: impl Into<String>) {
        self.progress.event("bench", what);
    }

    /// Starts the workers if they are not running, and warms them up with `sizes.warmup` runs.
    pub async fn ensure_workers(&mut self) -> Result<(), BenchError> {
        if self.pool.is_some() {
            return Ok(());
        }
        self.start_workers().await?;
        let n = self.sizes.warmup;
        if n > 0 {
            self.rec.reset(Want::Acked(n));
            let sent = Arc::new(AtomicU64::new(0));
            let client = self.client.clone();
            let submit = client.submit(client::NOOP, n, self.bulk(), empty, &sent);
            self.drive("warm-up", Some(Want::Acked(n)), n, &sent, submit).await?;
            self.phase(format!("warm-up: {n} runs done"));
        }
        Ok(())
    }

    /// Starts the workers (no warm-up) and waits until every stream is connected.
    pub async fn start_workers(&mut self) -> Result<(), BenchError> {
        let s = &self.sizes;
        let pool =
            Pool::start(self.client.endpoint.as_str(), s.worker_streams, s.slots, &self.task_type, &self.rec).await?;
        self.pool = Some(pool);
        Ok(())
    }

    pub async fn stop_workers(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.stop().await;
        }
    }

    /// Runs `submit` while showing progress, then waits until the recorder reaches `want` (if any).
    /// `total` is how many runs `submit` enqueues (it counts them into `sent`).
    pub async fn drive<T>(
        &self,
        phase: &str,
        want: Option<Want>,
        total: u64,
        sent: &Arc<AtomicU64>,
        submit: impl Future<Output = Result<T, BenchError>>,
    ) -> Result<(T, Driven), BenchError> {
        let mut submit = std::pin::pin!(submit);
        let mut out: Option<(T, Instant)> = None;
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let (mut seen, mut changed) = ((0, 0), Instant::now());
        let mut rate_from = (Instant::now(), 0u64);
        loop {
            if let Some((_, submitted)) = &out {
                let reached = match want {
                    None => Some(*submitted),
                    Some(w) => self.rec.counts().reached(w),
                };
                if let Some(reached) = reached {
                    self.progress.finish();
                    let (value, submitted) = out.take().expect("checked above");
                    return Ok((value, Driven { submitted, reached }));
                }
            }
            tokio::select! {
                r = &mut submit, if out.is_none() => out = Some((r?, Instant::now())),
                () = self.rec.wake() => {}
                _ = tick.tick() => {
                    let c = self.rec.counts();
                    let done = want.map_or(c.acked, |w| c.done(w));
                    let now = (sent.load(Ordering::Relaxed), done);
                    if now != seen {
                        (seen, changed) = (now, Instant::now());
                    } else if changed.elapsed() >= STALL {
                        self.progress.finish();
                        let want_n = match want { Some(Want::Acked(n) | Want::Sinks(n)) => n, None => total };
                        return Err(BenchError::Stalled {
                            phase: phase.to_owned(), done, total: want_n, rejected: c.rejected, idle: STALL,
                        });
                    }
                    if self.tty {
                        let dt = rate_from.0.elapsed().as_secs_f64().max(1e-3);
                        let rate = (done.saturating_sub(rate_from.1)) as f64 / dt;
                        rate_from = (Instant::now(), done);
                        let of = match want { Some(Want::Acked(n) | Want::Sinks(n)) => format!("/{n}"), None => String::new() };
                        self.progress.status(format!(
                            "{phase}: enqueued {}/{total}, completed {done}{of}, {rate:.0}/s", now.0
                        ));
                    }
                }
            }
        }
    }
}

/// The input of runs that carry no timestamp.
pub fn empty() -> String {
    "{}".to_owned()
}

/// Runs the bench: starts (or reaches) the deployment, measures every mode, tears down, reports.
pub async fn run(cfg: Config) -> Result<Report, BenchError> {
    let progress = Progress::new();
    let started_at = progress.started_at();
    let deployment = Deployment::start(&cfg.target, &cfg.server_bin, cfg.work_dir.clone(), cfg.keep, &progress).await?;
    let facts = deployment.facts.clone();
    let task_type = format!("bench-noop-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut bench = match setup(&cfg, deployment, progress.clone(), task_type).await {
        Ok(b) => b,
        Err((e, deployment)) => {
            for n in deployment.teardown().await {
                progress.event("teardown", n);
            }
            return Err(e);
        }
    };
    let outcome = tokio::select! {
        r = measure(&mut bench, &cfg.modes) => r,
        _ = tokio::signal::ctrl_c() => Err(BenchError::Interrupted),
    };
    progress.finish();
    bench.stop_workers().await;
    for d in bench.rec.take_disconnects() {
        bench.notes.push(format!("a worker stream broke: {d}"));
    }
    if let Some(deployment) = bench.deployment.take() {
        bench.notes.extend(deployment.teardown().await);
    }
    if let Err(e) = outcome {
        for n in &bench.notes {
            progress.event("teardown", n.clone());
        }
        return Err(e);
    }
    Ok(Report {
        braid_bench: 1,
        started_at,
        elapsed_s: progress.start().elapsed().as_secs_f64(),
        command: cfg.command.clone(),
        quick: cfg.quick,
        machine: machine::Machine::probe(),
        deployment: facts,
        workers: format!(
            "rust (braid-worker SDK in the bench process): {} stream(s) × {} slots",
            bench.sizes.worker_streams, bench.sizes.slots
        ),
        task_type: bench.task_type.clone(),
        sizes: bench.sizes.clone(),
        figures: std::mem::take(&mut bench.figures).into_vec(),
        modes: std::mem::take(&mut bench.modes),
        database_cost: std::mem::take(&mut bench.db),
        notes: std::mem::take(&mut bench.notes),
    })
}

/// Connects, applies the workflows and opens the database probe.
async fn setup(
    cfg: &Config,
    deployment: Deployment,
    progress: Progress,
    task_type: String,
) -> Result<Bench, (BenchError, Deployment)> {
    let client = match Client::connect(deployment.endpoint()).await {
        Ok(c) => c,
        Err(e) => return Err((e, deployment)),
    };
    for def in [client::noop_workflow(&task_type), client::dag_workflow(&task_type, cfg.sizes.dag_width)] {
        if let Err(e) = client.put_workflow(&def).await {
            return Err((e, deployment));
        }
    }
    let mut db = DatabaseCost::default();
    let probe = match &deployment.db {
        Some(d) => match dbcost::Probe::open(d.conn.clone()).await {
            Ok(p) => {
                db.available = true;
                Some(p)
            }
            Err(why) => {
                db.note = Some(why);
                None
            }
        },
        None => {
            db.note = Some(format!("only on the postgres deployment (this is {})", deployment.facts.kind));
            None
        }
    };
    progress.event("setup", format!("workflows {} and {} applied (task type {task_type})", client::NOOP, client::DAG));
    Ok(Bench {
        sizes: cfg.sizes.clone(),
        progress,
        client,
        rec: Arc::new(Recorder::default()),
        task_type,
        figures: Figures::default(),
        modes: BTreeMap::new(),
        db,
        notes: Vec::new(),
        deployment: Some(deployment),
        pool: None,
        probe,
        tty: std::io::stderr().is_terminal(),
    })
}

async fn measure(bench: &mut Bench, modes: &[Mode]) -> Result<(), BenchError> {
    for mode in modes {
        bench.phase(format!("{} starting", mode.name()));
        let record = match mode {
            Mode::Throughput => modes::throughput::run(bench).await?,
            Mode::Latency => modes::latency::run(bench).await?,
            Mode::Dag => modes::dag::run(bench).await?,
            Mode::Drain => modes::drain::run(bench).await?,
            Mode::Soak => modes::soak::run(bench).await?,
            Mode::All => continue,
        };
        bench.modes.insert(mode.name(), record);
    }
    Ok(())
}
