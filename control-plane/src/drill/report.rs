//! The drill report: what was injected and when, recovery figures, and every invariant and check with PASS/FAIL.

use super::progress::Event;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Offending ids listed in the text report per failed check (the JSON report lists all).
const SHOWN_IDS: usize = 10;

/// PASS or FAIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Fail,
}

impl Status {
    pub fn of(ok: bool) -> Self {
        if ok { Self::Pass } else { Self::Fail }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
        }
    }
}

/// One invariant or scenario check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `1`..`6` for the invariants; a short name for scenario checks.
    pub id: String,
    pub name: String,
    pub status: Status,
    /// What was measured.
    pub detail: String,
    /// Ids (runs, tasks, leases, keys) that break it.
    pub offending: Vec<String>,
}

impl Check {
    pub fn new(id: impl Into<String>, name: impl Into<String>, offending: Vec<String>, detail: String) -> Self {
        Self { id: id.into(), name: name.into(), status: Status::of(offending.is_empty()), detail, offending }
    }

    /// A check that is a plain condition, with no ids to list.
    pub fn cond(id: impl Into<String>, name: impl Into<String>, ok: bool, detail: String) -> Self {
        Self { id: id.into(), name: name.into(), status: Status::of(ok), detail, offending: Vec::new() }
    }
}

/// How the deployment under test was set up.
#[derive(Debug, Clone, Serialize)]
pub struct Deployment {
    pub control_planes: Vec<String>,
    pub workers: Vec<String>,
    pub lease_ttl_ms: u64,
    pub reaper_interval_ms: u64,
    pub reconcile_grace_ms: u64,
    pub database: String,
    pub database_kept: bool,
    pub redis_url: String,
    /// Where logs and ledgers are (kept with --keep or when the drill fails).
    pub work_dir: String,
    pub work_dir_kept: bool,
}

/// Recovery and workload figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    pub runs_acknowledged: usize,
    pub triggers_given_up: usize,
    pub trigger_calls_retried: u64,
    pub runs_by_state: BTreeMap<String, u64>,
    /// From the first fault to the first task finished after the last heal.
    pub time_to_first_progress_ms: Option<u64>,
    /// Tasks the fault stranded (their worker died, or their queue entry was lost), and how.
    pub stranded_tasks: usize,
    pub stranded_how: String,
    /// From the fault until the last stranded task was leased again (database clock).
    pub time_to_redispatch_ms: Option<u64>,
    /// From the first fault until every acknowledged run was terminal.
    pub time_to_settle_ms: Option<u64>,
    /// attempts → number of tasks that took that many.
    pub attempts_per_task: BTreeMap<u32, u64>,
    /// Tasks leased more than once.
    pub tasks_re_leased: u64,
    /// Attempts by outcome (`succeeded`, `failed`, `lease_expired`, `released`, `cancelled`, `open`).
    pub attempts_by_outcome: BTreeMap<String, u64>,
    /// Results the server rejected as stale (code 9), from the worker ledgers.
    pub stale_results_rejected: u64,
    pub dead_letters: u64,
    /// Worker processes that died without the drill killing them (and were restarted).
    pub worker_crashes: u64,
    /// The longest a lease was seen past its expiry while judged (database clock).
    pub max_lease_overdue_ms: i64,
}

/// The whole report of one drill.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    /// When the drill started (UTC); the timeline counts from here.
    pub started_at: String,
    pub verdict: Status,
    pub summary: String,
    pub deployment: Deployment,
    pub workload: String,
    pub injected: Vec<Event>,
    pub timeline: Vec<Event>,
    pub figures: Figures,
    pub invariants: Vec<Check>,
    pub checks: Vec<Check>,
    pub notes: Vec<String>,
}

fn secs(ms: Option<u64>) -> String {
    ms.map_or_else(|| "n/a".into(), |ms| format!("{:.3}s", ms as f64 / 1000.0))
}

fn check_lines(out: &mut String, checks: &[Check]) {
    for c in checks {
        let _ = writeln!(out, "  {}  {:<3} {}: {}", c.status.as_str(), c.id, c.name, c.detail);
        if !c.offending.is_empty() {
            let shown: Vec<&str> = c.offending.iter().take(SHOWN_IDS).map(String::as_str).collect();
            let more = c.offending.len().saturating_sub(SHOWN_IDS);
            let tail = if more > 0 { format!(" … and {more} more") } else { String::new() };
            let _ = writeln!(out, "             offending ({}): {}{tail}", c.offending.len(), shown.join(", "));
        }
    }
}

impl Report {
    /// The report as text, for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let d = &self.deployment;
        let f = &self.figures;
        let _ = writeln!(out, "braid drill {}: {} (started {})", self.scenario, self.verdict.as_str(), self.started_at);
        let _ = writeln!(out, "{}", self.summary);
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "deployment: {} control plane(s) [{}]; workers [{}]",
            d.control_planes.len(),
            d.control_planes.join(", "),
            d.workers.join(", ")
        );
        let _ = writeln!(
            out,
            "            lease TTL {}ms, reaper every {}ms, reconcile grace {}ms; database {} ({}); redis {}",
            d.lease_ttl_ms,
            d.reaper_interval_ms,
            d.reconcile_grace_ms,
            d.database,
            if d.database_kept { "kept" } else { "dropped" },
            d.redis_url
        );
        if d.work_dir_kept {
            let _ = writeln!(out, "            logs and ledgers kept in {}", d.work_dir);
        }
        let _ = writeln!(out, "workload:   {}", self.workload);
        let _ = writeln!(out);
        let _ = writeln!(out, "timeline:");
        for e in &self.timeline {
            let _ = writeln!(out, "  +{:>7.3}s  {:<8} {}", e.at_ms as f64 / 1000.0, e.kind, e.what);
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "figures:");
        let _ = writeln!(
            out,
            "  runs acknowledged        {} ({} trigger(s) never acknowledged, {} trigger call(s) retried)",
            f.runs_acknowledged, f.triggers_given_up, f.trigger_calls_retried
        );
        let states: Vec<String> = f.runs_by_state.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let _ = writeln!(out, "  runs by state            {}", states.join(", "));
        if f.stranded_tasks > 0 {
            let _ = writeln!(
                out,
                "  time to re-dispatch      {} (fault → the last of {} task(s) {} leased again)",
                secs(f.time_to_redispatch_ms),
                f.stranded_tasks,
                f.stranded_how
            );
        }
        let _ = writeln!(
            out,
            "  time to first progress   {} (first fault → first task finished after the last heal)",
            secs(f.time_to_first_progress_ms)
        );
        let _ = writeln!(
            out,
            "  time to settle           {} (first fault → every acknowledged run terminal)",
            secs(f.time_to_settle_ms)
        );
        let dist: Vec<String> = f.attempts_per_task.iter().map(|(a, n)| format!("{a} attempt(s): {n}")).collect();
        let _ = writeln!(out, "  attempts per task        {}", dist.join(", "));
        let outcomes: Vec<String> = f.attempts_by_outcome.iter().map(|(o, n)| format!("{o} {n}")).collect();
        let _ = writeln!(out, "  attempts by outcome      {}", outcomes.join(", "));
        let _ = writeln!(out, "  tasks re-leased          {}", f.tasks_re_leased);
        let _ =
            writeln!(out, "  stale results rejected   {} (code 9, from the worker ledgers)", f.stale_results_rejected);
        let _ = writeln!(out, "  dead letters             {}", f.dead_letters);
        let _ = writeln!(out, "  worker crashes           {}", f.worker_crashes);
        let _ = writeln!(out, "  longest lease overdue    {}ms (past expiry, while judged)", f.max_lease_overdue_ms);
        let _ = writeln!(out);
        let _ = writeln!(out, "invariants:");
        check_lines(&mut out, &self.invariants);
        if !self.checks.is_empty() {
            let _ = writeln!(out, "scenario checks:");
            check_lines(&mut out, &self.checks);
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out, "notes:");
            for n in &self.notes {
                let _ = writeln!(out, "  - {n}");
            }
        }
        out
    }

    /// Every invariant and check that failed.
    pub fn failures(&self) -> Vec<&Check> {
        self.invariants.iter().chain(&self.checks).filter(|c| c.status == Status::Fail).collect()
    }
}
