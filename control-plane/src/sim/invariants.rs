//! The invariants checked after a simulation (those of the crash drills), and the runs' event logs written into its log.

use super::ledger::Ledger;
use super::log::{EventLog, Names};
use crate::domain::records::{RunDetail, RunEvent, RunFilter, Tenant};
use crate::domain::state::{RunState, TaskState};
use crate::engine::{Engine, EngineError};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// A broken invariant, with what shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `nothing-stuck`, `no-lost-work`, `one-accepted-result`, `monotonic-attempts`,
    /// `one-run-per-key`, `one-run-per-tick` or `event-log`.
    pub invariant: &'static str,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

/// Every run with its tasks, attempts and events, oldest first.
async fn everything(engine: &Engine, tenant: &Tenant) -> Result<Vec<(RunDetail, Vec<RunEvent>)>, EngineError> {
    let mut runs = Vec::new();
    let mut token = String::new();
    loop {
        let page = engine.list_runs(tenant, &RunFilter::default(), 500, &token).await?;
        runs.extend(page.items);
        match page.next {
            Some(next) => token = next,
            None => break,
        }
    }
    runs.reverse();
    let mut out = Vec::with_capacity(runs.len());
    for r in runs {
        let detail = engine.get_run(tenant, r.id).await?;
        let mut events = Vec::new();
        loop {
            let after = events.last().map_or(0, |e: &RunEvent| e.sequence);
            let (page, _) = engine.run_events(tenant, r.id, after, 1000).await?;
            if page.is_empty() {
                break;
            }
            events.extend(page);
        }
        out.push((detail, events));
    }
    Ok(out)
}

fn terminal(s: TaskState) -> bool {
    match s {
        TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled | TaskState::Skipped => true,
        TaskState::Pending | TaskState::Ready | TaskState::Leased => false,
    }
}

fn run_ended(s: RunState) -> bool {
    match s {
        RunState::Succeeded | RunState::Failed | RunState::Cancelled => true,
        RunState::Queued | RunState::Running => false,
    }
}

/// Writes every run's events into `log` and returns the invariants they break.
pub async fn check(
    engine: &Engine,
    tenant: &Tenant,
    ledger: &Ledger,
    names: &mut Names,
    log: &mut EventLog,
) -> Result<Vec<Violation>, EngineError> {
    let all = everything(engine, tenant).await?;
    let mut v = Vec::new();
    let mut bad = |invariant: &'static str, detail: String| v.push(Violation { invariant, detail });

    // The runs' own logs, as the engine wrote them.
    for (d, events) in &all {
        let run = names.name("r", d.run.id);
        let key = d.run.idempotency_key.as_deref().unwrap_or("-");
        log.line(&format!("run {run} key {key}: {} ({} events)", d.run.state, events.len()));
        for e in events {
            let task = e.task_name.as_deref().unwrap_or("-");
            let attempt = e.attempt.map_or(String::new(), |a| format!("#{a}"));
            let detail = names.scrub(&e.detail);
            let ms = (e.at - super::clock::epoch()).num_milliseconds();
            log.line(&format!("  {run} {:>3} {ms:>7}ms {} {task}{attempt} {detail}", e.sequence, e.kind));
        }
    }

    let tasks: BTreeMap<Uuid, (String, &crate::domain::records::Task)> =
        all.iter().flat_map(|(d, _)| d.tasks.iter().map(move |t| (t.id, (d.run.id.to_string(), t)))).collect();
    let label = |names: &mut Names, task_id: Uuid| -> String {
        match tasks.get(&task_id) {
            Some((run, t)) => {
                let run = run.parse().map(|id| names.name("r", id)).unwrap_or_default();
                format!("{run}/{}", t.name)
            }
            None => names.name("task", task_id),
        }
    };

    // Nothing stuck: once faults stop, every run ends, and with it every task.
    for (d, _) in &all {
        let run = names.name("r", d.run.id);
        if !run_ended(d.run.state) {
            let open: Vec<String> =
                d.tasks.iter().filter(|t| !terminal(t.state)).map(|t| format!("{} {}", t.name, t.state)).collect();
            bad("nothing-stuck", format!("{run} is still {} after the drain: {}", d.run.state, open.join(", ")));
        } else if let Some(t) = d.tasks.iter().find(|t| !terminal(t.state)) {
            bad("nothing-stuck", format!("{run} ended {} but task {} is {}", d.run.state, t.name, t.state));
        }
    }

    // No lost work: every acknowledged run exists, and a run's end agrees with its tasks.
    let known: BTreeSet<Uuid> = all.iter().map(|(d, _)| d.run.id).collect();
    for ack in &ledger.acks {
        if !known.contains(&ack.run_id) {
            let run = names.name("r", ack.run_id);
            bad("no-lost-work", format!("acknowledged run {run} does not exist"));
        }
    }
    for (d, _) in &all {
        let run = names.name("r", d.run.id);
        let all_succeeded = d.tasks.iter().all(|t| t.state == TaskState::Succeeded);
        match d.run.state {
            RunState::Succeeded if !all_succeeded => {
                bad("no-lost-work", format!("{run} succeeded with tasks that did not"));
            }
            RunState::Failed if !d.tasks.iter().any(|t| t.state == TaskState::Failed) => {
                bad("no-lost-work", format!("{run} failed without a failed task"));
            }
            _ => {}
        }
    }

    // One accepted result per task: results are accepted from one attempt only, and an
    // accepted result is what the store recorded for its attempt.
    let mut successes: BTreeMap<Uuid, BTreeSet<u32>> = BTreeMap::new();
    for s in ledger.sent.iter().filter(|s| s.accepted) {
        let task = label(names, s.key.task_id);
        let Some((_, t)) = tasks.get(&s.key.task_id) else {
            bad("one-accepted-result", format!("{} accepted a result for unknown task {task}", s.worker));
            continue;
        };
        let recorded = t.attempts.iter().find(|a| a.attempt == s.key.attempt).and_then(|a| a.outcome.clone());
        if recorded.as_deref() != Some(s.outcome) {
            bad(
                "one-accepted-result",
                format!(
                    "{}'s result {} for {task}#{} was accepted, but that attempt is recorded as {}",
                    s.worker,
                    s.outcome,
                    s.key.attempt,
                    recorded.as_deref().unwrap_or("unfinished")
                ),
            );
        }
        if s.outcome == "succeeded" {
            successes.entry(s.key.task_id).or_default().insert(s.key.attempt);
            if t.state == TaskState::Succeeded && t.output != s.output_json {
                bad(
                    "one-accepted-result",
                    format!("{task} kept output {:?}, not the accepted {:?}", t.output, s.output_json),
                );
            }
        }
    }
    for (task_id, attempts) in successes.iter().filter(|(_, a)| a.len() > 1) {
        let task = label(names, *task_id);
        let list: Vec<String> = attempts.iter().map(|a| format!("#{a}")).collect();
        bad("one-accepted-result", format!("{task}: successes of attempts {} were all accepted", list.join(", ")));
    }

    // Monotonic attempts: numbered 1, 2, 3… without gaps or repeats, within the budget, and
    // leases reach workers in increasing attempt order.
    for (_, (_, t)) in tasks.iter() {
        let numbers: Vec<u32> = t.attempts.iter().map(|a| a.attempt).collect();
        let expected: Vec<u32> = (1..=numbers.len() as u32).collect();
        if numbers != expected || t.attempt != numbers.len() as u32 {
            let task = label(names, t.id);
            bad("monotonic-attempts", format!("{task} has attempts {numbers:?} (current {})", t.attempt));
        }
        let counted = t.attempts.iter().filter(|a| a.outcome.as_deref() != Some("released")).count();
        if counted > t.max_attempts as usize {
            let task = label(names, t.id);
            bad("monotonic-attempts", format!("{task} ran {counted} attempts, over its {}", t.max_attempts));
        }
    }
    let mut last_lease: BTreeMap<Uuid, u32> = BTreeMap::new();
    for l in &ledger.leases {
        let prev = last_lease.insert(l.key.task_id, l.key.attempt).unwrap_or(0);
        if l.key.attempt <= prev {
            let task = label(names, l.key.task_id);
            bad("monotonic-attempts", format!("{} leased {task}#{} after #{prev}", l.worker, l.key.attempt));
        }
    }
    for (d, events) in &all {
        let run = names.name("r", d.run.id);
        let seqs: Vec<u64> = events.iter().map(|e| e.sequence).collect();
        if seqs != (1..=seqs.len() as u64).collect::<Vec<_>>() {
            bad("event-log", format!("{run}'s events are numbered {seqs:?}"));
        }
        let mut leased: BTreeMap<&str, u32> = BTreeMap::new();
        for e in events.iter().filter(|e| e.kind == "task_leased") {
            let (task, attempt) = (e.task_name.as_deref().unwrap_or("-"), e.attempt.unwrap_or(0));
            let prev = leased.insert(task, attempt).unwrap_or(0);
            if attempt <= prev {
                bad("monotonic-attempts", format!("{run}/{task} leased as #{attempt} after #{prev}"));
            }
        }
    }

    // One run per idempotency key and per cron tick.
    for key in &ledger.keys {
        let runs: Vec<String> = all
            .iter()
            .filter(|(d, _)| d.run.idempotency_key.as_deref() == Some(key.as_str()))
            .map(|(d, _)| names.name("r", d.run.id))
            .collect();
        if runs.len() != 1 {
            bad("one-run-per-key", format!("key {key} has {} run(s): {}", runs.len(), runs.join(", ")));
        }
        let answered: BTreeSet<Uuid> =
            ledger.acks.iter().filter(|a| a.key.as_deref() == Some(key.as_str())).map(|a| a.run_id).collect();
        if answered.len() > 1 {
            bad("one-run-per-key", format!("triggers with key {key} were answered with {} runs", answered.len()));
        }
    }
    let mut ticks: BTreeMap<(Uuid, chrono::DateTime<chrono::Utc>), Vec<String>> = BTreeMap::new();
    for (d, _) in &all {
        if let Some(tick) = d.run.schedule {
            ticks.entry((tick.schedule_id, tick.nominal)).or_default().push(names.name("r", d.run.id));
        }
    }
    for ((_, at), runs) in ticks.iter().filter(|(_, r)| r.len() > 1) {
        bad("one-run-per-tick", format!("the tick of {at} made {} runs: {}", runs.len(), runs.join(", ")));
    }
    Ok(v)
}

/// Counts for the last line of the log and the command's output.
pub async fn summary(engine: &Engine, tenant: &Tenant, ledger: &Ledger) -> Result<String, EngineError> {
    let all = everything(engine, tenant).await?;
    let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
    for (d, _) in &all {
        *by_state.entry(d.run.state.to_string()).or_default() += 1;
    }
    let states: Vec<String> = by_state.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let accepted = ledger.sent.iter().filter(|s| s.accepted).count();
    Ok(format!(
        "{} runs ({}), {} leases, {} results ({} accepted, {} stale)",
        all.len(),
        states.join(", "),
        ledger.leases.len(),
        ledger.sent.len(),
        accepted,
        ledger.sent.len() - accepted
    ))
}

/// Replays every ended run exactly (`braid replay`'s check) and reports those whose replayed
/// events part from the recorded ones.
pub async fn replays(engine: &Engine, tenant: &Tenant, names: &mut Names) -> Result<Vec<Violation>, EngineError> {
    let mut v = Vec::new();
    for (d, events) in everything(engine, tenant).await? {
        if !run_ended(d.run.state) {
            continue;
        }
        let def = engine.get_workflow(tenant, &d.run.workflow_name, Some(d.run.workflow_version)).await?.definition;
        let rec = super::replay::Recording::of(&d, &events, def);
        let run = names.name("r", d.run.id);
        match super::replay::replay_exact(&rec).await {
            Ok(r) => {
                if let Some(div) = r.divergence {
                    let show = |e: &Option<super::replay::RecordedEvent>| {
                        e.as_ref().map_or_else(|| "(nothing)".to_owned(), super::replay::RecordedEvent::label)
                    };
                    let notes = if r.replay.notes.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", r.replay.notes.join("; "))
                    };
                    v.push(Violation {
                        invariant: "replay",
                        detail: format!(
                            "{run}: replayed event {} is {}, recorded {}{notes}",
                            div.index + 1,
                            show(&div.replayed),
                            show(&div.recorded)
                        ),
                    });
                }
            }
            Err(e) => v.push(Violation { invariant: "replay", detail: format!("{run}: the replay failed: {e}") }),
        }
    }
    Ok(v)
}
