//! The invariant checks on hand-made evidence: each one passes on a clean history and names the ids that break it.

use super::Evidence;
use crate::drill::ledger::{Ledger, Line};
use crate::drill::process::Ending;
use crate::drill::report::Status;
use crate::drill::workload::Ack;
use crate::store::entity::{run, task, task_attempt};
use braid_proto::v1 as pb;
use chrono::{TimeZone, Utc};
use uuid::Uuid;

fn at(s: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap()
}

fn run_row(id: Uuid, key: Option<&str>) -> run::Model {
    run::Model {
        id,
        tenant_id: "default".into(),
        workflow_name: "wf".into(),
        workflow_version: 1,
        state: "succeeded".into(),
        input: "{}".into(),
        output: None,
        idempotency_key: key.map(str::to_owned),
        input_hash: None,
        trigger_source: "api".into(),
        reason: None,
        next_event_seq: 0,
        created_at: at(0),
        started_at: Some(at(0)),
        finished_at: Some(at(9)),
        updated_at: at(9),
        priority: 1,
        concurrency_key: None,
        schedule_id: None,
        scheduled_for: None,
        gated: false,
        trace_context: None,
    }
}

fn task_row(id: Uuid, run_id: Uuid, attempt: i32, lease: Uuid) -> task::Model {
    task::Model {
        id,
        tenant_id: "default".into(),
        run_id,
        name: "s".into(),
        task_type: "sleep".into(),
        state: "succeeded".into(),
        depends_on: "[]".into(),
        pending_deps: 0,
        attempt,
        max_attempts: 5,
        retry_policy: "{}".into(),
        timeout_ms: 60_000,
        lease_id: Some(lease),
        lease_expires_at: None,
        worker_id: Some("w".into()),
        available_at: at(0),
        output: Some("{}".into()),
        last_error: None,
        created_at: at(0),
        updated_at: at(9),
        finished_at: Some(at(9)),
        published_at: None,
        priority: 1,
    }
}

fn attempt_row(task: &task::Model, attempt: i32, lease: Uuid, outcome: &str) -> task_attempt::Model {
    task_attempt::Model {
        id: Uuid::now_v7(),
        tenant_id: "default".into(),
        task_id: task.id,
        run_id: task.run_id,
        attempt,
        lease_id: lease,
        worker_id: Some("w".into()),
        started_at: at(i64::from(attempt)),
        finished_at: Some(at(i64::from(attempt) + 1)),
        outcome: Some(outcome.into()),
        error: None,
        output: (outcome == "succeeded").then(|| "{}".into()),
    }
}

fn line(event: &str, t: Uuid, attempt: u32, lease: Uuid, outcome: Option<&str>, code: Option<i32>) -> Line {
    Line {
        event: event.into(),
        task_id: t.to_string(),
        attempt,
        lease_id: lease.to_string(),
        worker_id: "stream".into(),
        outcome: outcome.map(str::to_owned),
        code,
        error_type: None,
    }
}

/// One run, one task: attempt 1 lost with a killed worker, attempt 2 succeeded; both ledgers.
fn clean() -> (Evidence, Uuid, Uuid, Uuid) {
    let (r, t, l1, l2) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let task = task_row(t, r, 2, l2);
    let mut ev = Evidence::default();
    ev.acks.push(Ack {
        workflow: "wf".into(),
        key: Some("k".into()),
        run_id: r.to_string(),
        created: true,
        calls: 1,
        endpoint: "cp1".into(),
        latency_ms: 1,
    });
    let api_run = pb::Run { id: r.to_string(), state: pb::RunState::Succeeded as i32, ..Default::default() };
    ev.api_runs.insert(r.to_string(), Ok(api_run));
    ev.snapshot.runs.push(run_row(r, Some("k")));
    ev.snapshot.attempts.push(attempt_row(&task, 1, l1, "lease_expired"));
    ev.snapshot.attempts.push(attempt_row(&task, 2, l2, "succeeded"));
    ev.snapshot.tasks.push(task);
    ev.ledgers.push(Ledger {
        worker: "a".into(),
        generation: 1,
        path: "a.jsonl".into(),
        ending: Ending::KilledByDrill,
        lines: vec![line("start", t, 1, l1, None, None)],
        unreadable: 0,
    });
    ev.ledgers.push(Ledger {
        worker: "b".into(),
        generation: 1,
        path: "b.jsonl".into(),
        ending: Ending::Running,
        lines: vec![
            line("start", t, 2, l2, None, None),
            line("finish", t, 2, l2, Some("succeeded"), None),
            line("ack", t, 2, l2, Some("accepted"), Some(0)),
        ],
        unreadable: 0,
    });
    (ev, t, l1, l2)
}

fn failing(ev: &Evidence) -> Vec<String> {
    ev.invariants().into_iter().filter(|c| c.status == Status::Fail).map(|c| c.id).collect()
}

#[test]
fn a_clean_history_passes_all_six() {
    let (ev, ..) = clean();
    assert_eq!(failing(&ev), Vec::<String>::new(), "{:#?}", ev.invariants());
}

#[test]
fn a_run_that_never_ended_is_lost_work() {
    let (mut ev, ..) = clean();
    for r in ev.api_runs.values_mut().flatten() {
        r.state = pb::RunState::Running as i32;
    }
    assert_eq!(failing(&ev), ["1"]);
    assert!(ev.no_lost_work().offending[0].contains("running"), "{:?}", ev.no_lost_work());
}

#[test]
fn a_lease_seen_far_past_expiry_is_stuck() {
    let (mut ev, t, ..) = clean();
    ev.leases.threshold_ms = 1200;
    ev.leases.stuck.insert(t.to_string(), 1800);
    assert_eq!(failing(&ev), ["2"]);
}

#[test]
fn a_late_result_accepted_for_an_old_lease_breaks_3_and_6() {
    let (mut ev, t, l1, _) = clean();
    // The killed worker's attempt 1 "comes back" and is told accepted: what happens without fencing.
    ev.ledgers[0].ending = Ending::Running;
    ev.ledgers[0].lines.push(line("finish", t, 1, l1, Some("succeeded"), None));
    ev.ledgers[0].lines.push(line("ack", t, 1, l1, Some("accepted"), Some(0)));
    assert_eq!(failing(&ev), ["3", "6"]);
    let six = ev.ledgers_agree();
    assert!(six.offending[0].contains(&format!("task {t} attempt 1")), "{six:?}");
}

#[test]
fn a_gap_or_a_reissued_attempt_number_breaks_4() {
    let (mut ev, t, _, _) = clean();
    ev.snapshot.attempts.remove(0);
    assert_eq!(failing(&ev), ["4"]);
    let (mut ev, _, _, _) = clean();
    // Attempt 2 seen under another lease in a ledger: the number was issued twice.
    ev.ledgers[0].lines.push(line("start", t, 2, Uuid::now_v7(), None, None));
    assert_eq!(failing(&ev), ["4"]);
}

#[test]
fn two_runs_for_one_key_break_5() {
    let (mut ev, ..) = clean();
    ev.snapshot.runs.push(run_row(Uuid::now_v7(), Some("k")));
    assert_eq!(failing(&ev), ["5"]);
}

#[test]
fn a_success_no_worker_reported_breaks_6_unless_its_worker_was_killed() {
    let (mut ev, ..) = clean();
    ev.ledgers[1].lines.clear();
    // No worker ever reported attempt 2's output: the database invented it.
    assert_eq!(failing(&ev), ["6"]);
    let (mut ev, ..) = clean();
    // Reported, but the ack never came back: excused only if the process was killed.
    ev.ledgers[1].lines.pop();
    assert_eq!(failing(&ev), ["6"]);
    ev.ledgers[1].ending = Ending::KilledByDrill;
    assert_eq!(failing(&ev), Vec::<String>::new());
}
