//! The lease protocol through the engine on SQLite and PostgreSQL: DAG progress, retries,
//! dead letters and redrive, fencing, the reaper, cancellation.

mod common;

use braid_control_plane::domain::records::{RunDetail, TaskError};
use braid_control_plane::domain::state::{RunState, TaskState};
use braid_control_plane::engine::ExecSettings;
use braid_control_plane::engine::complete::{Completion, Outcome, Verdict};
use braid_control_plane::engine::dispatch::Assignment;
use braid_control_plane::engine::trigger::TriggerRequest;
use braid_control_plane::store::dead_letters::DeadLetterFilter;
use common::{TestDb, tenant, yaml};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

async fn start(db: &TestDb, def: &str, input: &str) -> Uuid {
    db.engine.put_workflow(&tenant(), &yaml(def)).await.unwrap();
    let name = def.lines().next().unwrap().trim_start_matches("name: ").to_owned();
    let req = TriggerRequest { workflow_name: name, input_json: input.into(), ..TriggerRequest::default() };
    db.engine.trigger_run(&tenant(), &req).await.unwrap().run.run.id
}

async fn run(db: &TestDb, id: Uuid) -> RunDetail {
    db.engine.get_run(&tenant(), id).await.unwrap()
}

/// Leases every ready task of the run (what a worker stream does after a queue read).
async fn lease_ready(db: &TestDb, id: Uuid, worker: &str) -> Vec<Assignment> {
    let ready: Vec<Uuid> =
        run(db, id).await.tasks.iter().filter(|t| t.state == TaskState::Ready).map(|t| t.id).collect();
    db.engine.lease(&tenant(), worker, &ready).await.unwrap()
}

fn ok(output: Value) -> Outcome {
    Outcome::Succeeded { output_json: output.to_string() }
}

fn fail(retryable: bool) -> Outcome {
    Outcome::Failed(TaskError { message: "boom".into(), kind: "injected".into(), retryable, details: None })
}

fn state_of(r: &RunDetail, name: &str) -> TaskState {
    r.tasks.iter().find(|t| t.name == name).unwrap().state
}

const FAN: &str = "name: fan\ntasks:\n  - {name: a, task_type: t}\n  - {name: b1, task_type: t, depends_on: [a]}\n  - {name: b2, task_type: t, depends_on: [a]}\n  - {name: b3, task_type: t, depends_on: [a]}\n  - {name: c, task_type: t, depends_on: [b1, b2, b3]}\n";

async fn fan_out_fan_in(db: &TestDb) {
    let id = start(db, FAN, r#"{"n": 2}"#).await;
    let first = lease_ready(db, id, "w1").await;
    assert_eq!(first.len(), 1);
    let input: Value = serde_json::from_str(&first[0].input_json).unwrap();
    assert_eq!(input, json!({"input": {"n": 2}, "deps": {}}));
    assert_eq!(first[0].key.attempt, 1);
    let e = &db.engine;
    assert_eq!(e.complete(&tenant(), first[0].key, ok(json!({"a": 1}))).await.unwrap(), Verdict::Accepted);
    let middle = lease_ready(db, id, "w1").await;
    assert_eq!(middle.len(), 3, "fan-out to three");
    for (i, a) in middle.iter().enumerate() {
        let input: Value = serde_json::from_str(&a.input_json).unwrap();
        assert_eq!(input["deps"], json!({"a": {"a": 1}}));
        e.complete(&tenant(), a.key, ok(json!({"b": i}))).await.unwrap();
    }
    let last = lease_ready(db, id, "w1").await;
    assert_eq!(last.len(), 1);
    let input: Value = serde_json::from_str(&last[0].input_json).unwrap();
    assert_eq!(input["deps"].as_object().unwrap().len(), 3, "fan-in gets every dependency's output");
    e.complete(&tenant(), last[0].key, ok(json!({"done": true}))).await.unwrap();
    let r = run(db, id).await;
    assert_eq!(r.run.state, RunState::Succeeded);
    assert_eq!(r.run.output.as_deref(), Some(r#"{"c":{"done":true}}"#));
    assert!(r.tasks.iter().all(|t| t.state == TaskState::Succeeded));
    let (events, _) = e.run_events(&tenant(), id, 0, 1000).await.unwrap();
    let seq: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(seq, (1..=seq.len() as u64).collect::<Vec<_>>(), "gapless sequence");
    assert_eq!(events.last().unwrap().kind, "run_succeeded");
}
on_both_backends!(a_fan_out_fan_in_dag_succeeds_with_dependency_outputs, fan_out_fan_in);

const RETRY: &str = "name: retry\ntasks:\n  - {name: flaky, task_type: t, retry: {max_attempts: 3, initial_backoff: 200ms, max_backoff: 200ms, jitter: false}}\n";

async fn retries(db: &TestDb) {
    let id = start(db, RETRY, "").await;
    let e = &db.engine;
    // A lease taken once the backoff had passed (a slow machine can get there first).
    let mut next: Option<Assignment> = None;
    for attempt in 1..=2 {
        let a = match next.take() {
            Some(a) => vec![a],
            None => lease_ready(db, id, "w").await,
        };
        assert_eq!(a[0].key.attempt, attempt);
        assert_eq!(e.complete(&tenant(), a[0].key, fail(true)).await.unwrap(), Verdict::Accepted);
        let r = run(db, id).await;
        assert_eq!(state_of(&r, "flaky"), TaskState::Ready);
        let failed_at = r.tasks[0].attempts.last().unwrap().finished_at.unwrap();
        assert!(
            r.tasks[0].available_at >= failed_at + chrono::Duration::milliseconds(200),
            "the 200ms backoff delays it"
        );
        // Not leasable until the backoff has passed: a lease now is refused unless the backoff
        // already ran out by the time it was asked for (asserted with the clock read before it).
        let due = r.tasks[0].available_at;
        let asked_at = chrono::Utc::now();
        match lease_ready(db, id, "w").await.pop() {
            None => wait_until_due(db, id).await,
            Some(early) => {
                assert!(
                    asked_at + chrono::Duration::milliseconds(5) >= due,
                    "leased {:?} before its backoff passed",
                    due - asked_at
                );
                next = Some(early);
            }
        }
    }
    let a = match next.take() {
        Some(a) => vec![a],
        None => lease_ready(db, id, "w").await,
    };
    assert_eq!(a[0].key.attempt, 3);
    e.complete(&tenant(), a[0].key, ok(json!({"third": true}))).await.unwrap();
    let r = run(db, id).await;
    assert_eq!(r.run.state, RunState::Succeeded);
    let attempts: Vec<_> = r.tasks[0].attempts.iter().map(|a| (a.attempt, a.outcome.clone().unwrap())).collect();
    assert_eq!(attempts, [(1, "failed".into()), (2, "failed".into()), (3, "succeeded".into())]);
}
on_both_backends!(a_task_failing_twice_succeeds_on_attempt_three, retries);

/// Waits (bounded) until the run's ready task is due, i.e. its backoff has passed.
async fn wait_until_due(db: &TestDb, id: Uuid) {
    let due = run(db, id).await.tasks[0].available_at;
    let wait = (due - chrono::Utc::now()).to_std().unwrap_or_default();
    assert!(wait <= Duration::from_secs(1), "backoff is the configured 200ms, got {wait:?}");
    tokio::time::sleep(wait + Duration::from_millis(5)).await;
}

const DEAD: &str = "name: dead\ntasks:\n  - {name: a, task_type: t}\n  - {name: b, task_type: t, depends_on: [a], retry: {max_attempts: 2, initial_backoff: 1ms, max_backoff: 1ms, jitter: false}}\n  - {name: c, task_type: t, depends_on: [b]}\n  - {name: d, task_type: t, depends_on: [c]}\n";

async fn dead_letters_and_redrive(db: &TestDb) {
    let id = start(db, DEAD, "").await;
    let e = &db.engine;
    let a = lease_ready(db, id, "w").await;
    e.complete(&tenant(), a[0].key, ok(json!(1))).await.unwrap();
    for _ in 0..2 {
        let b = lease_ready(db, id, "w").await;
        if b.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        e.complete(&tenant(), b[0].key, fail(true)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let mut r = run(db, id).await;
    if state_of(&r, "b") == TaskState::Ready {
        let b = lease_ready(db, id, "w").await;
        e.complete(&tenant(), b[0].key, fail(true)).await.unwrap();
        r = run(db, id).await;
    }
    assert_eq!(state_of(&r, "b"), TaskState::Failed);
    assert_eq!(state_of(&r, "c"), TaskState::Skipped);
    assert_eq!(state_of(&r, "d"), TaskState::Skipped);
    assert_eq!(r.run.state, RunState::Failed);
    let dl = e.list_dead_letters(&tenant(), &DeadLetterFilter::default(), 0, "").await.unwrap();
    assert_eq!(dl.items.len(), 1);
    assert_eq!(dl.items[0].task_name, "b");
    assert_eq!(dl.items[0].attempts, 2);
    assert_eq!(dl.items[0].error.kind, "injected");
    let by_type = DeadLetterFilter { error_type: Some("other".into()), ..DeadLetterFilter::default() };
    assert!(e.list_dead_letters(&tenant(), &by_type, 0, "").await.unwrap().items.is_empty());

    let redriven = e.redrive(&tenant(), &[dl.items[0].id], &DeadLetterFilter::default()).await.unwrap();
    assert_eq!(redriven, [dl.items[0].task_id]);
    let r = run(db, id).await;
    assert_eq!(r.run.state, RunState::Running);
    assert_eq!(state_of(&r, "c"), TaskState::Pending);
    let b = lease_ready(db, id, "w").await;
    assert_eq!(b[0].key.attempt, 3, "attempt numbers keep rising after a redrive");
    e.complete(&tenant(), b[0].key, ok(json!(2))).await.unwrap();
    for _ in 0..2 {
        let next = lease_ready(db, id, "w").await;
        e.complete(&tenant(), next[0].key, ok(json!(3))).await.unwrap();
    }
    assert_eq!(run(db, id).await.run.state, RunState::Succeeded);
    assert!(e.list_dead_letters(&tenant(), &DeadLetterFilter::default(), 0, "").await.unwrap().items.is_empty());
}
on_both_backends!(dead_letters_are_redriven_and_the_run_resumes, dead_letters_and_redrive);

const ONE: &str = "name: one\ntasks:\n  - {name: only, task_type: t, retry: {max_attempts: 5, initial_backoff: 1ms, max_backoff: 1ms, jitter: false}}\n";

async fn fencing(db: &TestDb) {
    let id = start(db, ONE, "").await;
    let e = &db.engine;
    let first = lease_ready(db, id, "zombie").await;
    // The zombie's lease expires; the reaper gives the task to another worker.
    tokio::time::sleep(e.settings().lease_ttl + Duration::from_millis(50)).await;
    assert_eq!(e.reap_once().await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = lease_ready(db, id, "fresh").await;
    assert_eq!(second[0].key.attempt, 2);
    let late = e.complete(&tenant(), first[0].key, ok(json!("zombie"))).await.unwrap();
    assert!(matches!(late, Verdict::Stale { .. }), "{late:?}");
    // A made-up lease id is stale too, even with the right attempt.
    let mut forged = second[0].key;
    forged.lease_id = Uuid::now_v7();
    assert!(matches!(e.complete(&tenant(), forged, ok(json!("x"))).await.unwrap(), Verdict::Stale { .. }));
    e.complete(&tenant(), second[0].key, ok(json!("fresh"))).await.unwrap();
    let r = run(db, id).await;
    assert_eq!(r.tasks[0].output.as_deref(), Some(r#""fresh""#), "the newer attempt's output is the one kept");
    let outcomes: Vec<_> = r.tasks[0].attempts.iter().map(|a| a.outcome.clone().unwrap()).collect();
    assert_eq!(outcomes, ["lease_expired", "succeeded"]);
    // The reaper does not touch a lease that is still alive.
    assert_eq!(e.reap_once().await.unwrap(), 0);
}

mod fencing_rejects_a_zombie_result {
    use super::*;
    fn settings() -> ExecSettings {
        ExecSettings::default().with_lease_ttl(Duration::from_millis(300))
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let db = TestDb::sqlite_with(settings()).await;
        fencing(&db).await;
        db.finish().await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let db = TestDb::postgres_with(settings()).await;
        fencing(&db).await;
        db.finish().await;
    }
}

async fn heartbeats(db: &TestDb) {
    let id = start(db, ONE, "").await;
    let e = &db.engine;
    let a = lease_ready(db, id, "w").await;
    // Heartbeats keep the lease alive past its TTL.
    for _ in 0..4 {
        tokio::time::sleep(e.settings().lease_ttl / 3).await;
        let beat = e.heartbeat(&tenant(), "w", &[a[0].key], &[]).await.unwrap();
        assert!(beat.stale.is_empty());
        assert_eq!(beat.kept, [a[0].key]);
        assert_eq!(e.reap_once().await.unwrap(), 0);
    }
    let mut bogus = a[0].key;
    bogus.attempt = 7;
    assert_eq!(
        e.heartbeat(&tenant(), "w", &[bogus], &[]).await.unwrap().stale,
        [bogus],
        "a lease that is not current is named"
    );
    // A worker that reconnected (new stream id) keeps its lease by listing it.
    tokio::time::sleep(e.settings().lease_ttl / 2).await;
    let beat = e.heartbeat(&tenant(), "new-stream", &[a[0].key], &[]).await.unwrap();
    assert_eq!(beat.kept, [a[0].key]);
    tokio::time::sleep(e.settings().lease_ttl * 2 / 3).await;
    // The stream now counts the rebound lease as its own (in flight until answered).
    let _ = e.heartbeat(&tenant(), "new-stream", &[], &[a[0].key]).await.unwrap();
    assert_eq!(e.reap_once().await.unwrap(), 0, "the new stream's heartbeats extend the rebound lease");
    assert_eq!(e.complete(&tenant(), a[0].key, ok(json!({}))).await.unwrap(), Verdict::Accepted);
    // The same result again (a lost ack) is accepted again and changes nothing.
    assert_eq!(e.complete(&tenant(), a[0].key, ok(json!({}))).await.unwrap(), Verdict::Accepted);
    assert_eq!(run(db, id).await.tasks[0].attempts.len(), 1);
}

/// A lease taken for a stream whose worker never heard of it (the commit's answer was lost with
/// the database connection, so no assignment was sent) is not kept alive by that stream's
/// heartbeats: it expires and the reaper gives the task another attempt.
async fn unknown_leases_expire(db: &TestDb) {
    let id = start(db, ONE, "").await;
    let e = &db.engine;
    let a = lease_ready(db, id, "w").await;
    assert_eq!(a.len(), 1);
    for _ in 0..4 {
        tokio::time::sleep(e.settings().lease_ttl / 3).await;
        let beat = e.heartbeat(&tenant(), "w", &[], &[]).await.unwrap();
        assert!(beat.kept.is_empty() && beat.stale.is_empty());
    }
    assert_eq!(e.reap_once().await.unwrap(), 1, "the unknown lease expired and was reaped");
}

mod leases_a_worker_never_heard_of_expire {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let db = TestDb::sqlite_with(ExecSettings::default().with_lease_ttl(Duration::from_millis(300))).await;
        unknown_leases_expire(&db).await;
        db.finish().await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let db = TestDb::postgres_with(ExecSettings::default().with_lease_ttl(Duration::from_millis(300))).await;
        unknown_leases_expire(&db).await;
        db.finish().await;
    }
}

mod heartbeats_extend_leases {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let db = TestDb::sqlite_with(ExecSettings::default().with_lease_ttl(Duration::from_millis(300))).await;
        heartbeats(&db).await;
        db.finish().await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let db = TestDb::postgres_with(ExecSettings::default().with_lease_ttl(Duration::from_millis(300))).await;
        heartbeats(&db).await;
        db.finish().await;
    }
}

async fn cancellation(db: &TestDb) {
    let id = start(db, FAN, "").await;
    let e = &db.engine;
    let a = lease_ready(db, id, "w").await;
    let out = e.cancel_run(&tenant(), id, "enough").await.unwrap();
    assert_eq!(out.run.run.state, RunState::Cancelled);
    assert_eq!(out.revoked.len(), 1, "the worker holding a's lease is told");
    assert_eq!(out.revoked[0].key, a[0].key);
    assert!(out.run.tasks.iter().all(|t| t.state == TaskState::Cancelled));
    // A result after cancellation is recorded but changes nothing.
    let late = e.complete(&tenant(), a[0].key, ok(json!({"late": true}))).await.unwrap();
    assert!(matches!(late, Verdict::Stale { .. }));
    let r = run(db, id).await;
    assert_eq!(r.run.state, RunState::Cancelled);
    assert_eq!(r.tasks[0].attempts[0].outcome.as_deref(), Some("cancelled"));
    assert!(lease_ready(db, id, "w").await.is_empty());
    // Cancelling again is harmless.
    assert_eq!(e.cancel_run(&tenant(), id, "").await.unwrap().run.run.state, RunState::Cancelled);
}
on_both_backends!(cancelling_a_run_cancels_its_tasks_and_fences_late_results, cancellation);

async fn non_retryable(db: &TestDb) {
    let id = start(db, ONE, "").await;
    let a = lease_ready(db, id, "w").await;
    db.engine.complete(&tenant(), a[0].key, fail(false)).await.unwrap();
    let r = run(db, id).await;
    assert_eq!(r.run.state, RunState::Failed);
    assert_eq!(r.tasks[0].attempts.len(), 1, "retryable=false ends the task at once");
    let bad = lease_ready(db, start(db, ONE, "").await, "w").await;
    let v =
        db.engine.complete(&tenant(), bad[0].key, Outcome::Succeeded { output_json: "{nope".into() }).await.unwrap();
    assert_eq!(v, Verdict::Accepted, "an invalid output becomes a clean failure");
}
on_both_backends!(a_non_retryable_error_or_invalid_output_fails_at_once, non_retryable);

/// Two control planes reaping the same expired leases at once recover each exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_reapers_recover_each_expired_lease_once() {
    let db = TestDb::postgres_with(ExecSettings::default().with_lease_ttl(Duration::from_millis(300))).await;
    let other = db.second_engine().await;
    db.engine.put_workflow(&tenant(), &yaml(ONE)).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..20 {
        let req = TriggerRequest { workflow_name: "one".into(), ..TriggerRequest::default() };
        ids.push(db.engine.trigger_run(&tenant(), &req).await.unwrap().run.run.id);
    }
    for id in &ids {
        lease_ready(&db, *id, "gone").await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (a, b) = tokio::join!(db.engine.reap_once(), other.reap_once());
    assert_eq!(a.unwrap() + b.unwrap(), 20, "every expired lease recovered once in total");
    for id in &ids {
        let r = run(&db, *id).await;
        let outcomes: Vec<_> = r.tasks[0].attempts.iter().map(|a| a.outcome.clone()).collect();
        assert_eq!(outcomes, [Some("lease_expired".to_owned())]);
        assert_eq!(r.tasks[0].state, TaskState::Ready);
    }
    db.finish().await;
}

async fn big_numbers(db: &TestDb) {
    let id = start(db, ONE, r#"{"big": 123456789012345678901234567890, "f": 0.1}"#).await;
    let a = lease_ready(db, id, "w").await;
    assert!(a[0].input_json.contains("123456789012345678901234567890"), "{}", a[0].input_json);
    assert!(a[0].input_json.contains("0.1"), "{}", a[0].input_json);
    db.engine.complete(&tenant(), a[0].key, ok(json!({"n": 98765432109876543210u128}))).await.unwrap();
    let r = run(db, id).await;
    assert_eq!(r.run.output.as_deref(), Some(r#"{"only":{"n":98765432109876543210}}"#), "numbers travel exactly");
}
on_both_backends!(payload_numbers_travel_exactly, big_numbers);

async fn releasing(db: &TestDb) {
    let id = start(db, ONE, "").await;
    let a = lease_ready(db, id, "draining").await;
    db.engine.release(&tenant(), &[a[0].key]).await.unwrap();
    let r = run(db, id).await;
    assert_eq!(r.tasks[0].state, TaskState::Ready);
    assert_eq!(r.tasks[0].max_attempts, 6, "an unused lease does not spend the budget of 5");
    let b = lease_ready(db, id, "other").await;
    assert_eq!(b[0].key.attempt, 2, "attempt numbers are never reused");
    assert!(matches!(db.engine.complete(&tenant(), a[0].key, ok(json!(1))).await.unwrap(), Verdict::Stale { .. }));
    db.engine.complete(&tenant(), b[0].key, ok(json!(2))).await.unwrap();
    let outcomes: Vec<_> = run(db, id).await.tasks[0].attempts.iter().map(|a| a.outcome.clone().unwrap()).collect();
    assert_eq!(outcomes, ["released", "succeeded"]);
}
on_both_backends!(a_released_lease_is_offered_again_without_spending_an_attempt, releasing);

/// Many results in one transaction: each decided in order against what the ones before it changed.
async fn batched_results(db: &TestDb) {
    let id = start(db, FAN, "{}").await;
    let e = &db.engine;
    let a = lease_ready(db, id, "w1").await.remove(0);
    e.complete(&tenant(), a.key, ok(json!({"a": 1}))).await.unwrap();
    let mid = lease_ready(db, id, "w1").await;
    assert_eq!(mid.len(), 3);
    let mut stale = mid[1].key;
    stale.lease_id = Uuid::now_v7();
    let batch = vec![
        Completion { key: mid[0].key, outcome: ok(json!({"b": 1})) },
        // The same result again in the same batch: accepted again, changing nothing.
        Completion { key: mid[0].key, outcome: ok(json!({"b": 1})) },
        Completion { key: stale, outcome: ok(json!({"zombie": true})) },
        Completion { key: mid[1].key, outcome: ok(json!({"b": 2})) },
        Completion { key: mid[2].key, outcome: fail(true) },
        Completion { key: mid[2].key, outcome: ok(json!({"late": true})) },
    ];
    let verdicts: Vec<Verdict> = e.complete_many(&tenant(), batch).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(verdicts[0], Verdict::Accepted);
    assert_eq!(verdicts[1], Verdict::Accepted);
    assert!(matches!(&verdicts[2], Verdict::Stale { reason } if reason.contains("not current")), "{verdicts:?}");
    assert_eq!(verdicts[3], Verdict::Accepted);
    assert_eq!(verdicts[4], Verdict::Accepted, "the failure schedules a retry");
    assert!(matches!(&verdicts[5], Verdict::Stale { .. }), "a result after the retry was scheduled is stale");
    let r = run(db, id).await;
    assert_eq!(state_of(&r, "b1"), TaskState::Succeeded);
    assert_eq!(state_of(&r, "b2"), TaskState::Succeeded);
    assert_eq!(state_of(&r, "b3"), TaskState::Ready);
    assert_eq!(state_of(&r, "c"), TaskState::Pending);
    let b2 = r.tasks.iter().find(|t| t.name == "b2").unwrap();
    assert_eq!(b2.output.as_deref(), Some(r#"{"b":2}"#), "the zombie's output was not written");
    let (events, _) = e.run_events(&tenant(), id, 0, 1000).await.unwrap();
    let seq: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(seq, (1..=seq.len() as u64).collect::<Vec<_>>(), "gapless sequence");
    let kinds: Vec<&str> = events.iter().rev().take(3).map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["task_retry_scheduled", "task_succeeded", "task_succeeded"]);
}
on_both_backends!(a_batch_of_results_is_decided_in_order_in_one_transaction, batched_results);

/// One run's DAG finished by a single batch: the dependents released and the run ended once.
async fn batch_finishes_run(db: &TestDb) {
    let id = start(db, FAN, "{}").await;
    let e = &db.engine;
    let a = lease_ready(db, id, "w1").await.remove(0);
    e.complete(&tenant(), a.key, ok(json!({}))).await.unwrap();
    let mid = lease_ready(db, id, "w1").await;
    let batch = mid.iter().map(|m| Completion { key: m.key, outcome: ok(json!({})) }).collect();
    assert!(e.complete_many(&tenant(), batch).await.into_iter().all(|v| v.unwrap() == Verdict::Accepted));
    let c = lease_ready(db, id, "w1").await;
    assert_eq!(c.len(), 1, "the fan-in is ready once all three succeeded in one batch");
    let failed = vec![Completion { key: c[0].key, outcome: fail(false) }];
    e.complete_many(&tenant(), failed).await.into_iter().for_each(|v| assert_eq!(v.unwrap(), Verdict::Accepted));
    let r = run(db, id).await;
    assert_eq!(r.run.state, RunState::Failed);
    let (events, _) = e.run_events(&tenant(), id, 0, 1000).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.kind == "run_failed").count(), 1);
}
on_both_backends!(a_batch_that_completes_a_fan_in_releases_it_once, batch_finishes_run);
