//! The scenarios, one file each, and the report built from what a scenario collected.

mod control_plane;
mod drain;
mod poison;
mod postgres;
mod redis;
mod storm;
mod worker_crash;
mod zombie;

use super::harness::Harness;
use super::invariants::Evidence;
use super::process::WorkerSpec;
use super::report::{self, Figures, Report, Status};
use super::{DrillError, Scenario};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// Runs the configured scenario to its evidence (the scenario adds its own checks to the harness).
pub async fn run(h: &mut Harness) -> Result<Evidence, DrillError> {
    match h.cfg.scenario {
        Scenario::WorkerCrash => worker_crash::run(h).await,
        Scenario::ZombieWorker => zombie::run(h).await,
        Scenario::Drain => drain::run(h).await,
        Scenario::RedisFlush => redis::run(h, redis::Fault::Flush).await,
        Scenario::RedisCrash => redis::run(h, redis::Fault::Crash).await,
        Scenario::RedisCrashAof => redis::run(h, redis::Fault::CrashWithAof).await,
        Scenario::PoisonTask => poison::run(h).await,
        Scenario::IdempotencyStorm => storm::run(h).await,
        Scenario::PostgresRestart => postgres::run(h).await,
        Scenario::ControlPlaneCrash => control_plane::run(h).await,
    }
}

/// Stops a stream of triggers, says what it did, and records its triggers for the invariants.
async fn stop_stream(h: &mut Harness, stream: super::workload::TriggerStream) -> super::workload::Triggers {
    let got = stream.finish().await;
    h.progress.event(
        "workload",
        format!(
            "stream stopped: {} acknowledged, {} given up, {} call(s) retried",
            got.acks.len(),
            got.gave_up.len(),
            got.retried_calls
        ),
    );
    h.triggers.extend(got.clone());
    got
}

/// `n` workers named `w1`… with `slots` each, serving `types`, on control plane 0.
fn workers(n: usize, slots: u32, types: &str) -> Vec<WorkerSpec> {
    (1..=n).map(|i| WorkerSpec { name: format!("w{i}"), slots, types: types.into(), control_plane: 0 }).collect()
}

/// `scripts/services` and its state dir, which the scenarios that restart Redis or PostgreSQL need.
fn services_of(h: &Harness) -> Result<(&std::path::Path, &std::path::Path), DrillError> {
    match (&h.cfg.services_script, &h.cfg.services_dir) {
        (Some(script), Some(dir)) => Ok((script, dir)),
        _ => Err(DrillError::Config(format!(
            "{} needs --services-script and --services-dir (env BRAID_SERVICES_SCRIPT, BRAID_SERVICES_DIR from `scripts/services start`)",
            h.cfg.scenario.name()
        ))),
    }
}

/// Runs `scripts/services CMD DIR ARGS…` (stop or start Redis or PostgreSQL).
async fn services(h: &Harness, cmd: &str, args: &[&str]) -> Result<(), DrillError> {
    let (script, dir) = services_of(h)?;
    let out = tokio::process::Command::new(script)
        .arg(cmd)
        .arg(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| DrillError::Process { what: format!("{} {cmd}", script.display()), reason: e.to_string() })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(DrillError::Process {
            what: format!("{} {cmd} {}", script.display(), dir.display()),
            reason: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()),
        })
    }
}

fn ms_between(from: Option<Instant>, to: Option<Instant>) -> Option<u64> {
    match (from, to) {
        (Some(a), Some(b)) => u64::try_from(b.saturating_duration_since(a).as_millis()).ok(),
        _ => None,
    }
}

/// The report of a finished scenario.
pub fn report(h: &mut Harness, ev: &Evidence) -> Report {
    let snap = &ev.snapshot;
    let mut f = Figures {
        runs_acknowledged: ev.acks.iter().map(|a| a.run_id.as_str()).collect::<BTreeSet<_>>().len(),
        triggers_given_up: h.triggers.gave_up.len(),
        trigger_calls_retried: h.triggers.retried_calls,
        ..Figures::default()
    };
    for r in &snap.runs {
        *f.runs_by_state.entry(r.state.clone()).or_default() += 1;
    }
    let heal = h.last_heal.or(h.first_fault);
    let progress_at = heal.and_then(|t| h.monitor.first_progress_after(t));
    f.time_to_first_progress_ms = ms_between(h.first_fault, progress_at);
    f.time_to_settle_ms = ms_between(h.first_fault, h.settled_at);
    let by_task = snap.attempts_by_task();
    if let Some(st) = &h.stranded {
        f.stranded_tasks = st.tasks.len();
        f.stranded_how.clone_from(&st.what);
        let mut worst = Some(0u64);
        for (id, attempt) in &st.tasks {
            let again = by_task.get(id).into_iter().flatten().find(|a| a.attempt > *attempt);
            worst = match (worst, again) {
                (Some(w), Some(a)) => {
                    Some(w.max(u64::try_from((a.started_at - st.at).num_milliseconds()).unwrap_or(0)))
                }
                _ => None,
            };
        }
        f.time_to_redispatch_ms = worst;
    }
    for t in &snap.tasks {
        let n = by_task.get(&t.id).map_or(0, Vec::len);
        *f.attempts_per_task.entry(u32::try_from(n).unwrap_or(u32::MAX)).or_default() += 1;
        if n > 1 {
            f.tasks_re_leased += 1;
        }
    }
    for a in &snap.attempts {
        *f.attempts_by_outcome.entry(a.outcome.clone().unwrap_or_else(|| "open".into())).or_default() += 1;
    }
    f.stale_results_rejected =
        ev.ledgers.iter().flat_map(|l| &l.lines).filter(|l| l.is("ack", "rejected") && l.code == Some(9)).count()
            as u64;
    f.dead_letters = snap.dead_letters.len() as u64;
    f.worker_crashes = h.crashes.len() as u64;
    f.max_lease_overdue_ms = ev.leases.max_overdue_judged_ms;

    let invariants = ev.invariants();
    let checks = h.checks.clone();
    let failed: Vec<String> = invariants
        .iter()
        .chain(&checks)
        .filter(|c| c.status == Status::Fail)
        .map(|c| format!("{} {}", c.id, c.name))
        .collect();
    let verdict = Status::of(failed.is_empty());
    let summary = if failed.is_empty() {
        format!("all {} invariants and {} scenario check(s) hold", invariants.len(), checks.len())
    } else {
        format!("{} failed: {}", failed.len(), failed.join("; "))
    };
    let mut timeline = h.progress.timeline();
    timeline.extend(stranded_events(h, ev));
    timeline.sort_by_key(|e| e.at_ms);
    let injected = timeline.iter().filter(|e| e.kind == "fault").cloned().collect();
    let mut worker_names: BTreeMap<String, String> = BTreeMap::new();
    for w in h.retired.iter().chain(&h.workers) {
        worker_names.insert(w.spec.name.clone(), format!("{}×{} [{}]", w.spec.name, w.spec.slots, w.spec.types));
    }
    Report {
        scenario: h.cfg.scenario.name().into(),
        started_at: h.progress.started_at(),
        verdict,
        summary,
        deployment: report::Deployment {
            control_planes: h.cps.iter().map(|c| format!("{} {}", c.name, c.grpc)).collect(),
            workers: worker_names.into_values().collect(),
            lease_ttl_ms: h.cfg.lease_ttl.as_millis() as u64,
            reaper_interval_ms: h.cfg.reaper_interval.as_millis() as u64,
            reconcile_grace_ms: h.cfg.reconcile_grace.as_millis() as u64,
            database: String::new(),
            database_kept: false,
            redis_url: h.cfg.redis_url.clone(),
            work_dir: h.dir.display().to_string(),
            work_dir_kept: false,
        },
        workload: h.workload.clone(),
        injected,
        timeline,
        figures: f,
        invariants,
        checks,
        notes: Vec::new(),
    }
}

/// Every acknowledged run succeeded, except those in `except`.
fn all_succeeded(ev: &Evidence, except: &BTreeSet<String>) -> report::Check {
    use braid_proto::v1 as pb;
    let mut offending = Vec::new();
    let mut n = 0;
    for (id, run) in &ev.api_runs {
        if except.contains(id) {
            continue;
        }
        n += 1;
        match run {
            Ok(r) if r.state == pb::RunState::Succeeded as i32 => {}
            Ok(r) => offending.push(format!("run {id} ({}: {})", r.state, r.reason)),
            Err(e) => offending.push(format!("run {id} ({e})")),
        }
    }
    let detail = format!("{}/{n} run(s) succeeded", n - offending.len());
    report::Check::new("runs-succeeded", "every run of the workload succeeded", offending, detail)
}

/// Every acknowledged keyed trigger has its run, and no run exists that no client was told of.
fn exactly_once(ev: &Evidence, got: &super::workload::Triggers) -> report::Check {
    let keys: BTreeSet<&str> = got.acks.iter().filter_map(|a| a.key.as_deref()).collect();
    let unacked: Vec<String> = ev
        .snapshot
        .runs
        .iter()
        .filter(|r| !r.idempotency_key.as_deref().is_some_and(|k| keys.contains(k)))
        .map(|r| format!("run {} (key {:?})", r.id, r.idempotency_key))
        .collect();
    report::Check::new(
        "exactly-once",
        "every acknowledged trigger exists exactly once, and no run exists that no client was told of",
        unacked,
        format!("{} run(s) in the database for {} acknowledged key(s)", ev.snapshot.runs.len(), keys.len()),
    )
}

/// What happened to the stranded tasks, from the database's timestamps (its clock, placed on the
/// drill's timeline by the instant the tasks were stranded): leases recovered, re-leased, finished.
fn stranded_events(h: &Harness, ev: &Evidence) -> Vec<super::progress::Event> {
    let Some(st) = &h.stranded else { return Vec::new() };
    let base = i64::try_from(h.progress.ms(st.local)).unwrap_or(0);
    let by_task = ev.snapshot.attempts_by_task();
    let (mut lost, mut again, mut done) = (Vec::new(), Vec::new(), Vec::new());
    for (id, attempt) in &st.tasks {
        for a in by_task.get(id).into_iter().flatten() {
            if a.attempt == *attempt && a.outcome.as_deref() == Some("lease_expired") {
                lost.extend(a.finished_at);
            }
            if a.attempt == *attempt + 1 {
                again.push(a.started_at);
            }
            if a.attempt > *attempt && a.outcome.as_deref() == Some("succeeded") {
                done.extend(a.finished_at);
            }
        }
    }
    let n = st.tasks.len();
    let mut out = Vec::new();
    let mut span = |mut times: Vec<chrono::DateTime<chrono::Utc>>, what: &str| {
        times.sort();
        if let (Some(first), Some(last)) = (times.first(), times.last()) {
            for (t, which) in [(first, "first"), (last, "last")] {
                // A lease whose transaction began just before the fault is stamped a little earlier.
                let at_ms = u64::try_from(base + (*t - st.at).num_milliseconds().max(0)).unwrap_or(0);
                let what = format!("{which} {what} ({} of {n} stranded; database clock)", times.len());
                out.push(super::progress::Event { at_ms, kind: "observed", what });
            }
        }
    };
    span(lost, "expired lease recovered by the reaper");
    span(again, "stranded task leased again");
    span(done, "stranded task succeeded on a later attempt");
    out
}
