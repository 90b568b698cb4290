//! The monitor: samples the database every 100 ms for task and run counts, progress and leases held past expiry.

use super::DrillError;
use super::progress::Progress;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const EVERY: Duration = Duration::from_millis(100);

/// Counts at one instant.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Tasks by state.
    pub tasks: BTreeMap<String, u64>,
    /// Runs by state.
    pub runs: BTreeMap<String, u64>,
}

impl Sample {
    pub fn tasks_in(&self, state: &str) -> u64 {
        self.tasks.get(state).copied().unwrap_or(0)
    }

    /// Tasks that succeeded or failed for good.
    pub fn finished_tasks(&self) -> u64 {
        self.tasks_in("succeeded") + self.tasks_in("failed")
    }

    pub fn terminal_runs(&self) -> u64 {
        ["succeeded", "failed", "cancelled"].iter().map(|s| self.runs.get(*s).copied().unwrap_or(0)).sum()
    }

    pub fn all_runs(&self) -> u64 {
        self.runs.values().sum()
    }
}

#[derive(Debug, Default)]
struct State {
    latest: Option<Sample>,
    /// Leases past expiry count against "nothing stuck" only from this instant on (None: paused).
    judge_from: Option<Instant>,
    stuck: BTreeMap<String, i64>,
    max_overdue_judged_ms: i64,
    max_overdue_ms: i64,
    /// (when, finished tasks) each time the number changed.
    finished: Vec<(Instant, u64)>,
    samples: u64,
    errors: u64,
    last_error: Option<String>,
}

/// What the monitor saw about leases past expiry.
#[derive(Debug, Clone, Default)]
pub struct LeaseWatch {
    /// Tasks seen leased longer than `threshold_ms` past expiry while judged, with the worst overdue.
    pub stuck: BTreeMap<String, i64>,
    pub threshold_ms: i64,
    pub max_overdue_judged_ms: i64,
    pub max_overdue_ms: i64,
    pub samples: u64,
    pub errors: u64,
    pub last_error: Option<String>,
}

/// A background sampler of the drill database.
#[derive(Debug)]
pub struct Monitor {
    state: Arc<Mutex<State>>,
    stop: CancellationToken,
    threshold_ms: i64,
}

async fn counts(db: &DatabaseConnection, table: &str) -> Result<BTreeMap<String, u64>, sea_orm::DbErr> {
    let sql = format!("SELECT state, count(*)::bigint AS n FROM {table} GROUP BY state");
    let rows = db.query_all_raw(Statement::from_string(DbBackend::Postgres, sql)).await?;
    let mut out = BTreeMap::new();
    for r in rows {
        let state: String = r.try_get("", "state")?;
        let n: i64 = r.try_get("", "n")?;
        out.insert(state, u64::try_from(n).unwrap_or(0));
    }
    Ok(out)
}

/// Leased tasks past their expiry, with how far past (database clock), in ms.
async fn overdue(db: &DatabaseConnection) -> Result<Vec<(String, i64)>, sea_orm::DbErr> {
    let sql = "SELECT id::text AS id, (extract(epoch FROM (now() - lease_expires_at)) * 1000)::bigint AS overdue_ms \
               FROM tasks WHERE state = 'leased' AND lease_expires_at < now()";
    let rows = db.query_all_raw(Statement::from_string(DbBackend::Postgres, sql)).await?;
    rows.into_iter().map(|r| Ok((r.try_get("", "id")?, r.try_get("", "overdue_ms")?))).collect()
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Monitor {
    /// Starts sampling `db`. A lease counts as stuck when it is more than `threshold` past its expiry.
    pub fn start(db: DatabaseConnection, threshold: Duration) -> Self {
        let state = Arc::new(Mutex::new(State { judge_from: Some(Instant::now()), ..State::default() }));
        let stop = CancellationToken::new();
        let threshold_ms = i64::try_from(threshold.as_millis()).unwrap_or(i64::MAX);
        let (s, st) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = st.cancelled() => return,
                }
                let sampled = async {
                    let tasks = counts(&db, "tasks").await?;
                    let runs = counts(&db, "runs").await?;
                    let late = overdue(&db).await?;
                    Ok::<_, sea_orm::DbErr>((Sample { tasks, runs }, late))
                };
                let now = Instant::now();
                let result = tokio::time::timeout(Duration::from_secs(5), sampled).await;
                let mut g = lock(&s);
                match result {
                    Ok(Ok((sample, late))) => {
                        g.samples += 1;
                        let judged = g.judge_from.is_some_and(|t| now >= t);
                        for (id, ms) in late {
                            g.max_overdue_ms = g.max_overdue_ms.max(ms);
                            if judged {
                                g.max_overdue_judged_ms = g.max_overdue_judged_ms.max(ms);
                                if ms > threshold_ms {
                                    let worst = g.stuck.entry(id).or_insert(ms);
                                    *worst = (*worst).max(ms);
                                }
                            }
                        }
                        let finished = sample.finished_tasks();
                        if g.finished.last().is_none_or(|(_, n)| *n != finished) {
                            g.finished.push((now, finished));
                        }
                        g.latest = Some(sample);
                    }
                    Ok(Err(e)) => {
                        g.errors += 1;
                        g.last_error = Some(e.to_string());
                    }
                    Err(_) => {
                        g.errors += 1;
                        g.last_error = Some("sample timed out after 5s".into());
                    }
                }
            }
        });
        Self { state, stop, threshold_ms }
    }

    pub fn latest(&self) -> Sample {
        lock(&self.state).latest.clone().unwrap_or_default()
    }

    /// Stops judging leases past expiry (the control plane or its database is down on purpose).
    pub fn pause_judging(&self) {
        lock(&self.state).judge_from = None;
    }

    /// Judges leases past expiry again from `t` on.
    pub fn judge_from(&self, t: Instant) {
        lock(&self.state).judge_from = Some(t);
    }

    /// The first instant after `t` at which more tasks had finished than at `t`.
    pub fn first_progress_after(&self, t: Instant) -> Option<Instant> {
        let g = lock(&self.state);
        let before = g.finished.iter().rev().find(|(at, _)| *at <= t).map_or(0, |(_, n)| *n);
        g.finished.iter().find(|(at, n)| *at > t && *n > before).map(|(at, _)| *at)
    }

    pub fn leases(&self) -> LeaseWatch {
        let g = lock(&self.state);
        LeaseWatch {
            stuck: g.stuck.clone(),
            threshold_ms: self.threshold_ms,
            max_overdue_judged_ms: g.max_overdue_judged_ms,
            max_overdue_ms: g.max_overdue_ms,
            samples: g.samples,
            errors: g.errors,
            last_error: g.last_error.clone(),
        }
    }

    /// Waits (showing `what`) until a fresh sample satisfies `pred`; an error after `deadline`.
    pub async fn wait_for(
        &self,
        progress: &Progress,
        what: &str,
        deadline: Duration,
        pred: impl Fn(&Sample) -> bool,
    ) -> Result<Sample, DrillError> {
        let until = Instant::now() + deadline;
        loop {
            let s = self.latest();
            if lock(&self.state).latest.is_some() && pred(&s) {
                return Ok(s);
            }
            if Instant::now() >= until {
                return Err(DrillError::Workload(format!("timed out after {deadline:?} waiting for {what}")));
            }
            progress.status(format!(
                "waiting for {what}: {} leased, {} ready, {} finished tasks",
                s.tasks_in("leased"),
                s.tasks_in("ready"),
                s.finished_tasks()
            ));
            tokio::time::sleep(EVERY).await;
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
