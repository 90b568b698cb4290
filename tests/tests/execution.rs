//! The lease protocol end to end: `braid server` on PostgreSQL and Redis with real
//! `braid-example-worker` processes, including crashes, pauses, drains and Redis data loss.

use braid_e2e::cluster::Cluster;
use braid_e2e::{braid, ledger_lines, stderr, wait_for_ledger};
use braid_proto::v1 as pb;
use serde_json::{Value, json};
use std::time::Duration;

fn task<'a>(run: &'a pb::Run, name: &str) -> &'a pb::Task {
    run.tasks.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no task {name}"))
}

fn output(t: &pb::Task) -> Value {
    serde_json::from_str(&t.output_json).unwrap_or(Value::Null)
}

const SUCCEEDED: i32 = pb::RunState::Succeeded as i32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_level_dag_passes_outputs_along() {
    let c = Cluster::start().await;
    let _w = c.worker("w1", 4, "echo", &[]);
    c.apply("name: fan\ntasks:\n  - {name: a, task_type: echo}\n  - {name: b1, task_type: echo, depends_on: [a]}\n  - {name: b2, task_type: echo, depends_on: [a]}\n  - {name: b3, task_type: echo, depends_on: [a]}\n  - {name: c, task_type: echo, depends_on: [b1, b2, b3]}\n");
    let id = c.trigger("fan", json!({"x": 1})).await;
    let run = c.finish(&id).await;
    assert_eq!(run.state, SUCCEEDED, "{run:?}");
    assert_eq!(output(task(&run, "a")), json!({"input": {"x": 1}, "deps": {}}));
    for b in ["b1", "b2", "b3"] {
        assert_eq!(output(task(&run, b))["deps"]["a"], output(task(&run, "a")));
    }
    let c_deps = output(task(&run, "c"))["deps"].clone();
    assert_eq!(c_deps.as_object().unwrap().len(), 3);
    assert_eq!(c_deps["b2"], output(task(&run, "b2")));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_failing_twice_succeeds_on_attempt_three_after_backoff() {
    let c = Cluster::start().await;
    let _w = c.worker("w1", 2, "fail", &[]);
    c.apply("name: flaky\ntasks:\n  - {name: f, task_type: fail, retry: {max_attempts: 3, initial_backoff: 300ms, max_backoff: 300ms, jitter: false}}\n");
    let id = c.trigger("flaky", json!({"times": 2})).await;
    let run = c.finish(&id).await;
    assert_eq!(run.state, SUCCEEDED);
    let f = task(&run, "f");
    assert_eq!(f.attempt, 3);
    assert_eq!(output(f), json!({"attempt": 3}));
    let outcomes: Vec<&str> = f.attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["failed", "failed", "succeeded"]);
    for pair in f.attempts.windows(2) {
        let finished = pair[0].finished_at.as_ref().unwrap();
        let started = pair[1].started_at.as_ref().unwrap();
        let gap_ms =
            (started.seconds - finished.seconds) * 1000 + i64::from(started.nanos - finished.nanos) / 1_000_000;
        assert!(gap_ms >= 250, "backoff of 300ms between attempts, got {gap_ms}ms");
    }
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_redriven_after_the_handler_is_fixed() {
    let c = Cluster::start().await;
    let broken = c.worker("broken", 2, "fail,echo", &[]);
    c.apply("name: dl\ntasks:\n  - {name: f, task_type: fail, retry: {max_attempts: 2, initial_backoff: 50ms, jitter: false}}\n  - {name: after, task_type: echo, depends_on: [f]}\n");
    let id = c.trigger("dl", json!({"always": true})).await;
    let run = c.finish(&id).await;
    assert_eq!(run.state, pb::RunState::Failed as i32);
    assert_eq!(task(&run, "f").state, pb::TaskState::Failed as i32);
    assert_eq!(task(&run, "after").state, pb::TaskState::Skipped as i32);
    let mut admin = pb::admin_service_client::AdminServiceClient::new(c.server.channel().await);
    let dls = admin.list_dead_letters(pb::ListDeadLettersRequest::default()).await.unwrap().into_inner().dead_letters;
    assert_eq!(dls.len(), 1);
    assert_eq!(dls[0].attempts, 2);
    assert_eq!(dls[0].last_error.as_ref().unwrap().r#type, "injected");
    // The handler is fixed: the broken worker goes, a healed one comes.
    broken.signal("TERM");
    broken.wait(Duration::from_secs(20));
    let _fixed = c.worker("fixed", 2, "fail,echo", &["--heal"]);
    let redrive = braid(&["dlq", "redrive", "--all", "--endpoint", &c.server.endpoint()]);
    assert!(redrive.status.success(), "{}", stderr(&redrive));
    let run = c.finish(&id).await;
    assert_eq!(run.state, SUCCEEDED, "{run:?}");
    assert_eq!(task(&run, "f").attempt, 3, "attempt numbers keep rising after a redrive");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_workers_late_result_is_rejected() {
    let c = Cluster::start().await;
    let zombie = c.worker("zombie", 1, "sleep", &[]);
    c.apply("name: slow\ntasks:\n  - {name: s, task_type: sleep, retry: {max_attempts: 3, initial_backoff: 10ms}}\n");
    let id = c.trigger("slow", json!({"ms": 2500})).await;
    wait_for_ledger(&zombie.ledger, Duration::from_secs(20), "zombie start", |l| l["event"] == "start");
    zombie.signal("STOP");
    let fresh = c.worker("fresh", 1, "sleep", &[]);
    let run = c.finish(&id).await;
    assert_eq!(run.state, SUCCEEDED);
    zombie.signal("CONT");
    wait_for_ledger(&zombie.ledger, Duration::from_secs(20), "zombie's rejected ack", |l| {
        l["event"] == "ack" && l["outcome"] == "rejected"
    });
    let run = c.get(&id).await;
    let s = task(&run, "s");
    let outcomes: Vec<&str> = s.attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["lease_expired", "succeeded"], "the newer attempt's result is the one accepted");
    let rejected: Vec<Value> = ledger_lines(&zombie.ledger).into_iter().filter(|l| l["event"] == "ack").collect();
    assert!(rejected.iter().all(|l| l["outcome"] == "rejected" && l["code"] == 9), "{rejected:?}");
    let accepted: Vec<Value> = ledger_lines(&fresh.ledger).into_iter().filter(|l| l["event"] == "ack").collect();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0]["attempt"], 2);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_task_is_re_leased_and_the_run_succeeds() {
    let c = Cluster::start().await;
    let doomed = c.worker("doomed", 1, "sleep", &[]);
    c.apply("name: crash\ntasks:\n  - {name: s, task_type: sleep}\n");
    let id = c.trigger("crash", json!({"ms": 1000})).await;
    wait_for_ledger(&doomed.ledger, Duration::from_secs(20), "start", |l| l["event"] == "start");
    doomed.signal("KILL");
    drop(doomed);
    let _survivor = c.worker("survivor", 1, "sleep", &[]);
    let run = c.finish(&id).await;
    assert_eq!(run.state, SUCCEEDED);
    let s = task(&run, "s");
    assert_eq!(s.attempts.len(), 2);
    assert_eq!(s.attempts[0].outcome, "lease_expired");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_flushall_mid_run_loses_nothing() {
    let c = Cluster::start().await;
    let w = c.worker("w1", 4, "sleep", &[]);
    c.apply("name: flush\ntasks:\n  - {name: a, task_type: sleep}\n  - {name: b, task_type: sleep, depends_on: [a]}\n  - {name: c, task_type: sleep, depends_on: [a]}\n  - {name: d, task_type: sleep, depends_on: [b, c]}\n");
    let id = c.trigger("flush", json!({"ms": 400})).await;
    wait_for_ledger(&w.ledger, Duration::from_secs(20), "start", |l| l["event"] == "start");
    let client = redis::Client::open(c.redis_url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
    let run = c.finish(&id).await;
    assert_eq!(run.state, SUCCEEDED, "{run:?}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_reaches_the_running_handler() {
    let c = Cluster::start().await;
    let w = c.worker("w1", 1, "sleep", &[]);
    c.apply("name: long\ntasks:\n  - {name: s, task_type: sleep}\n  - {name: t, task_type: sleep, depends_on: [s]}\n");
    let id = c.trigger("long", json!({"ms": 30000})).await;
    wait_for_ledger(&w.ledger, Duration::from_secs(20), "start", |l| l["event"] == "start");
    let out = braid(&["run", "cancel", &id, "--reason", "test", "--endpoint", &c.server.endpoint()]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for_ledger(&w.ledger, Duration::from_secs(10), "cancelled handler", |l| {
        l["event"] == "finish" && l["error_type"] == "cancelled"
    });
    let run = c.get(&id).await;
    assert_eq!(run.state, pb::RunState::Cancelled as i32);
    assert!(run.tasks.iter().all(|t| t.state == pb::TaskState::Cancelled as i32));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_worker_finishes_its_task_without_reassignment() {
    let c = Cluster::start().await;
    let w = c.worker("w1", 1, "sleep", &[]);
    c.apply("name: drain\ntasks:\n  - {name: s, task_type: sleep}\n");
    // Longer than the lease TTL: only heartbeats during the drain keep it.
    let id = c.trigger("drain", json!({"ms": 3000})).await;
    wait_for_ledger(&w.ledger, Duration::from_secs(20), "start", |l| l["event"] == "start");
    w.signal("TERM");
    let ledger = w.ledger.clone();
    let status = w.wait(Duration::from_secs(30));
    assert!(status.success(), "worker exit {status}");
    let run = c.get(&id).await;
    assert_eq!(run.state, SUCCEEDED, "{run:?}");
    let s = task(&run, "s");
    assert_eq!(s.attempts.len(), 1, "never reassigned");
    assert_eq!(s.attempts[0].outcome, "succeeded");
    assert!(ledger_lines(&ledger).iter().any(|l| l["event"] == "ack" && l["outcome"] == "accepted"));
    c.stop().await;
}
