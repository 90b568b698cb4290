//! The six invariants, checked on the evidence a drill collected: API reads, a database snapshot, worker ledgers.

use super::ledger::{Ledger, Line};
use super::monitor::LeaseWatch;
use super::report::Check;
use super::snapshot::Snapshot;
use super::workload::Ack;
use braid_proto::v1 as pb;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

/// Everything the checks look at.
#[derive(Debug, Default)]
pub struct Evidence {
    pub acks: Vec<Ack>,
    /// GetRun of every acknowledged run id (the error text when the call failed).
    pub api_runs: BTreeMap<String, Result<pb::Run, String>>,
    pub snapshot: Snapshot,
    pub ledgers: Vec<Ledger>,
    pub leases: LeaseWatch,
}

/// (task, attempt, lease) as text, the way ledgers write them.
type Key = (String, u32, String);

fn key_str(k: &Key) -> String {
    format!("task {} attempt {} lease {}", k.0, k.1, k.2)
}

fn terminal(state: i32) -> bool {
    [pb::RunState::Succeeded, pb::RunState::Failed, pb::RunState::Cancelled].iter().any(|s| *s as i32 == state)
}

fn state_name(state: i32) -> String {
    pb::RunState::try_from(state).map_or_else(|_| format!("state {state}"), |s| s.as_str_name().to_lowercase())
}

impl Evidence {
    /// The database's attempt rows by (task, attempt).
    fn db_attempts(&self) -> HashMap<(String, u32), &crate::store::entity::task_attempt::Model> {
        self.snapshot
            .attempts
            .iter()
            .map(|a| ((a.task_id.to_string(), u32::try_from(a.attempt).unwrap_or(0)), a))
            .collect()
    }

    /// Every ledger line with the ledger it came from.
    fn lines(&self) -> impl Iterator<Item = (&Ledger, &Line)> {
        self.ledgers.iter().flat_map(|l| l.lines.iter().map(move |line| (l, line)))
    }

    /// The outcome (`succeeded`/`failed`) a ledger's worker reported for `key`.
    fn reported(ledger: &Ledger, key: &Key) -> Option<String> {
        ledger.lines.iter().find(|l| l.event == "finish" && &l.key() == key).and_then(|l| l.outcome.clone())
    }

    /// Invariant 1: Every run whose trigger was acknowledged is terminal (read through the API).
    pub fn no_lost_work(&self) -> Check {
        let mut offending = Vec::new();
        let ids: BTreeSet<&str> = self.acks.iter().map(|a| a.run_id.as_str()).collect();
        for id in &ids {
            match self.api_runs.get(*id) {
                Some(Ok(run)) if terminal(run.state) => {}
                Some(Ok(run)) => offending.push(format!("run {id} ({})", state_name(run.state))),
                Some(Err(e)) => offending.push(format!("run {id} (GetRun: {e})")),
                None => offending.push(format!("run {id} (not read)")),
            }
        }
        let detail = format!(
            "{}/{} acknowledged run(s) terminal by the deadline (GetRun)",
            ids.len() - offending.len(),
            ids.len()
        );
        Check::new("1", "no lost work", offending, detail)
    }

    /// Invariant 2: No lease was seen held past its expiry plus the reaper interval (and a tolerance),
    /// and no finished run still has an open task.
    pub fn nothing_stuck(&self) -> Check {
        let w = &self.leases;
        let mut offending: Vec<String> =
            w.stuck.iter().map(|(id, ms)| format!("task {id} (leased {ms}ms past expiry)")).collect();
        let finished: BTreeSet<Uuid> = self
            .snapshot
            .runs
            .iter()
            .filter(|r| matches!(r.state.as_str(), "succeeded" | "failed" | "cancelled"))
            .map(|r| r.id)
            .collect();
        for t in &self.snapshot.tasks {
            if finished.contains(&t.run_id) && matches!(t.state.as_str(), "pending" | "ready" | "leased") {
                offending.push(format!("task {} ({} in a finished run)", t.id, t.state));
            }
        }
        let detail = format!(
            "no lease more than {}ms past expiry in {} samples (worst seen {}ms; {} sample error(s)); no open task in a finished run",
            w.threshold_ms, w.samples, w.max_overdue_judged_ms, w.errors
        );
        Check::new("2", "nothing stuck", offending, detail)
    }

    /// Invariant 3: At most one accepted output per task (database and ledgers), at most one accepted
    /// result per (task, attempt) in the ledgers, and a succeeded task's output is its attempt's.
    pub fn one_accepted_result(&self) -> Check {
        let mut offending = Vec::new();
        let by_task = self.snapshot.attempts_by_task();
        for t in &self.snapshot.tasks {
            let wins: Vec<_> = by_task
                .get(&t.id)
                .into_iter()
                .flatten()
                .filter(|a| a.outcome.as_deref() == Some("succeeded"))
                .collect();
            if wins.len() > 1 {
                offending.push(format!("task {} ({} succeeded attempts in the database)", t.id, wins.len()));
            }
            if t.state == "succeeded" {
                match wins.first() {
                    None => offending.push(format!("task {} (succeeded without a succeeded attempt)", t.id)),
                    Some(a) if a.attempt != t.attempt => offending
                        .push(format!("task {} (succeeded at attempt {}, current is {})", t.id, a.attempt, t.attempt)),
                    Some(a) if a.output != t.output => {
                        offending.push(format!("task {} (output differs from attempt {}'s)", t.id, a.attempt))
                    }
                    Some(_) => {}
                }
            }
        }
        let mut accepted: BTreeMap<(String, u32), u32> = BTreeMap::new();
        let mut accepted_outputs: BTreeMap<String, u32> = BTreeMap::new();
        for (ledger, line) in self.lines().filter(|(_, l)| l.is("ack", "accepted")) {
            *accepted.entry((line.task_id.clone(), line.attempt)).or_default() += 1;
            if Self::reported(ledger, &line.key()).as_deref() == Some("succeeded") {
                *accepted_outputs.entry(line.task_id.clone()).or_default() += 1;
            }
        }
        for ((task, attempt), n) in &accepted {
            if *n > 1 {
                offending.push(format!("task {task} attempt {attempt} ({n} accepted acks in the ledgers)"));
            }
        }
        for (task, n) in &accepted_outputs {
            if *n > 1 {
                offending.push(format!("task {task} ({n} accepted outputs in the ledgers)"));
            }
        }
        let detail = format!(
            "{} task(s), {} accepted result(s) in the ledgers; at most one accepted output per task and one accepted result per attempt",
            self.snapshot.tasks.len(),
            accepted.values().sum::<u32>()
        );
        Check::new("3", "one accepted result per task and per (task, attempt)", offending, detail)
    }

    /// Invariant 4: Attempt numbers are 1..=attempt without gaps or repeats, every attempt but the last
    /// ended before the next began, and no attempt number was issued under two leases.
    pub fn attempts_rise_by_one(&self) -> Check {
        let mut offending = Vec::new();
        let by_task = self.snapshot.attempts_by_task();
        for t in &self.snapshot.tasks {
            let list = by_task.get(&t.id).cloned().unwrap_or_default();
            let numbers: Vec<i32> = list.iter().map(|a| a.attempt).collect();
            let expected: Vec<i32> = (1..=t.attempt).collect();
            if numbers != expected {
                offending.push(format!("task {} (attempts {numbers:?}, current {})", t.id, t.attempt));
                continue;
            }
            for a in list.iter().take(list.len().saturating_sub(1)) {
                if !matches!(a.outcome.as_deref(), Some("failed" | "lease_expired" | "released")) {
                    offending.push(format!(
                        "task {} (attempt {} ended {:?} yet attempt {} was issued)",
                        t.id,
                        a.attempt,
                        a.outcome,
                        a.attempt + 1
                    ));
                }
            }
        }
        let db = self.db_attempts();
        let mut leases: BTreeMap<(String, u32), BTreeSet<String>> = BTreeMap::new();
        for (_, line) in self.lines() {
            leases.entry((line.task_id.clone(), line.attempt)).or_default().insert(line.lease_id.clone());
        }
        for ((task, attempt), seen) in &leases {
            let recorded = db.get(&(task.clone(), *attempt)).map(|a| a.lease_id.to_string());
            match recorded {
                None => offending.push(format!("task {task} attempt {attempt} (in a ledger, not in the database)")),
                Some(l) if seen.len() > 1 || !seen.contains(&l) => offending.push(format!(
                    "task {task} attempt {attempt} (leases {seen:?} in the ledgers, {l} in the database)"
                )),
                Some(_) => {}
            }
        }
        let detail = format!(
            "{} attempt(s) of {} task(s): contiguous from 1, each closed before the next, one lease per attempt number",
            self.snapshot.attempts.len(),
            self.snapshot.tasks.len()
        );
        Check::new("4", "attempts rise by one; no attempt number issued twice", offending, detail)
    }

    /// Invariant 5: At most one run per (workflow, idempotency key), in the database and in what triggers were told.
    pub fn one_run_per_key(&self) -> Check {
        let mut offending = Vec::new();
        let mut db: BTreeMap<(String, String), Vec<Uuid>> = BTreeMap::new();
        for r in &self.snapshot.runs {
            if let Some(k) = &r.idempotency_key {
                db.entry((r.workflow_name.clone(), k.clone())).or_default().push(r.id);
            }
        }
        for ((wf, key), runs) in &db {
            if runs.len() > 1 {
                offending.push(format!("key {wf}/{key} ({} runs in the database)", runs.len()));
            }
        }
        let mut told: BTreeMap<(String, String), BTreeSet<&str>> = BTreeMap::new();
        for a in &self.acks {
            if let Some(k) = &a.key {
                told.entry((a.workflow.clone(), k.clone())).or_default().insert(a.run_id.as_str());
            }
        }
        for ((wf, key), ids) in &told {
            let holder = db.get(&(wf.clone(), key.clone())).and_then(|v| v.first()).map(Uuid::to_string);
            if ids.len() > 1 {
                offending.push(format!("key {wf}/{key} (triggers were told {} different runs)", ids.len()));
            } else if holder.as_deref() != ids.first().copied() {
                offending
                    .push(format!("key {wf}/{key} (acknowledged {:?}, the database holds {holder:?})", ids.first()));
            }
        }
        let detail = format!("{} key(s) in the database, {} key(s) acknowledged", db.len(), told.len());
        Check::new("5", "at most one run per idempotency key", offending, detail)
    }

    /// Invariant 6: The ledgers agree with the database: each accepted result is the database's outcome of
    /// that very lease, each rejected one is not, and each succeeded attempt was reported by a worker.
    pub fn ledgers_agree(&self) -> Check {
        let mut offending = Vec::new();
        let db = self.db_attempts();
        let tasks: HashMap<String, &crate::store::entity::task::Model> =
            self.snapshot.tasks.iter().map(|t| (t.id.to_string(), t)).collect();
        let (mut accepted, mut rejected, mut excused) = (0, 0, 0);
        for (ledger, line) in self.lines().filter(|(_, l)| l.event == "ack") {
            let key = line.key();
            let reported = Self::reported(ledger, &key);
            let row = db.get(&(key.0.clone(), key.1)).filter(|a| a.lease_id.to_string() == key.2);
            if line.is("ack", "accepted") {
                accepted += 1;
                match row {
                    None => offending.push(format!("{} (accepted; no such lease in the database)", key_str(&key))),
                    Some(a) if a.outcome != reported => offending.push(format!(
                        "{} (worker reported {reported:?} and was told accepted; the database says {:?})",
                        key_str(&key),
                        a.outcome
                    )),
                    Some(a) if a.outcome.as_deref() == Some("succeeded") => {
                        let current =
                            tasks.get(&key.0).is_some_and(|t| t.attempt == a.attempt && t.state == "succeeded");
                        if !current {
                            offending
                                .push(format!("{} (accepted output is not the task's current attempt)", key_str(&key)));
                        }
                    }
                    Some(_) => {}
                }
            } else {
                rejected += 1;
                if let Some(a) = row
                    && a.outcome.is_some()
                    && a.outcome == reported
                {
                    offending
                        .push(format!("{} (told rejected, but the database recorded its {reported:?})", key_str(&key)));
                }
            }
        }
        let mut reports: HashMap<Key, Vec<&Ledger>> = HashMap::new();
        for (ledger, line) in self.lines().filter(|(_, l)| l.is("finish", "succeeded")) {
            reports.entry(line.key()).or_default().push(ledger);
        }
        for a in self.snapshot.attempts.iter().filter(|a| a.outcome.as_deref() == Some("succeeded")) {
            let key: Key = (a.task_id.to_string(), u32::try_from(a.attempt).unwrap_or(0), a.lease_id.to_string());
            match reports.get(&key) {
                None => offending.push(format!("{} (succeeded in the database; no worker reported it)", key_str(&key))),
                Some(ledgers) => {
                    let acked =
                        ledgers.iter().any(|l| l.lines.iter().any(|x| x.is("ack", "accepted") && x.key() == key));
                    if !acked {
                        if ledgers.iter().any(|l| l.ending.abnormal()) {
                            excused += 1;
                        } else {
                            offending.push(format!(
                                "{} (succeeded in the database; its worker was never told)",
                                key_str(&key)
                            ));
                        }
                    }
                }
            }
        }
        let detail = format!(
            "{accepted} accepted and {rejected} rejected ack(s) in {} ledger(s) compared with the database; {excused} success(es) whose ack died with a killed worker",
            self.ledgers.len()
        );
        Check::new("6", "worker ledgers agree with the database", offending, detail)
    }

    /// All six, in order.
    pub fn invariants(&self) -> Vec<Check> {
        vec![
            self.no_lost_work(),
            self.nothing_stuck(),
            self.one_accepted_result(),
            self.attempts_rise_by_one(),
            self.one_run_per_key(),
            self.ledgers_agree(),
        ]
    }
}

#[cfg(test)]
mod tests;
