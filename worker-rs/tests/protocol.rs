//! The SDK against a fake server: hello, typed handlers, results, heartbeats, slots.

mod support;

use braid_worker::{TaskContext, TaskError, WorkerEvent};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::*;
use tokio::sync::{Semaphore, mpsc};

const HOUR: Duration = Duration::from_secs(3600);

async fn noop(_: serde_json::Value, _: TaskContext) -> Result<(), TaskError> {
    Ok(())
}

#[tokio::test]
async fn hello_welcome_then_an_empty_heartbeat() {
    let mut server = FakeServer::start().await;
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let worker = Running::start(
        server
            .builder()
            .name("thumbnailer-1")
            .slots(3)
            .label("zone", "a")
            .task("resize", noop)
            .task("echo", noop)
            .on_event(move |e| {
                let _ = events_tx.send(e.clone());
            }),
    );
    let mut stream = server.accept().await;
    let hello = stream.handshake(HOUR, 2 * HOUR).await;
    assert_eq!(hello.worker_name, "thumbnailer-1");
    assert_eq!(hello.task_types, ["echo", "resize"]);
    assert_eq!(hello.slots, 3);
    assert_eq!(hello.labels.get("zone").map(String::as_str), Some("a"));
    assert_eq!((hello.sdk_language.as_str(), hello.sdk_version.as_str()), ("rust", env!("CARGO_PKG_VERSION")));
    // The first heartbeat follows Welcome at once (re-announcing held leases: none yet).
    assert!(stream.heartbeat().await.leases.is_empty());
    match within("Connected", events.recv()).await {
        Some(WorkerEvent::Connected { worker_id, server_version }) => {
            assert_eq!((worker_id.as_str(), server_version.as_str()), ("w-1", "fake"));
        }
        other => panic!("expected Connected, got {other:?}"),
    }
    assert_eq!(worker.handle.stats().connects, 1);
    worker.handle.shutdown();
    assert!(matches!(stream.recv_skipping_heartbeats().await, Some(Out::Drain(_))));
    assert!(stream.recv_skipping_heartbeats().await.is_none(), "the worker half-closes after draining");
    worker.finished().await.expect("clean exit");
}

#[derive(Debug, Deserialize)]
struct Add {
    a: i64,
    b: i64,
}

#[derive(Debug, Deserialize)]
struct Fetched {
    base: i64,
}

#[derive(Debug, Serialize)]
struct Sum {
    sum: i64,
    seen: serde_json::Value,
}

async fn add(input: Add, ctx: TaskContext) -> Result<Sum, TaskError> {
    let fetched: Fetched = ctx.deps("fetch")?;
    let seen = json!({
        "task_id": ctx.task_id(), "run_id": ctx.run_id(), "task_name": ctx.task_name(),
        "task_type": ctx.task_type(), "attempt": ctx.attempt(), "max_attempts": ctx.max_attempts(),
        "workflow": ctx.workflow_name(), "version": ctx.workflow_version(), "lease_id": ctx.lease_id(),
        "worker_id": ctx.worker_id(), "has_deadline": ctx.deadline().is_some(),
        "traceparent": ctx.trace_context().get("traceparent"), "deps": ctx.deps_raw().len(),
    });
    Ok(Sum { sum: input.a + input.b + fetched.base, seen })
}

#[tokio::test]
async fn an_assignment_runs_the_typed_handler_and_reports_with_its_lease() {
    let mut server = FakeServer::start().await;
    let worker = Running::start(server.builder().slots(2).task("add", add));
    let mut stream = server.accept().await;
    stream.handshake(HOUR, 2 * HOUR).await;
    stream.assign(assignment("t1", "add", r#"{"input": {"a": 1, "b": 2}, "deps": {"fetch": {"base": 100}}}"#));
    let result = stream.result().await;
    assert_eq!((result.task_id.as_str(), result.attempt, result.lease_id.as_str()), ("t1", 1, "L-t1"));
    let out = output(&result);
    assert_eq!(out["sum"], 103);
    assert_eq!(
        out["seen"],
        json!({
            "task_id": "t1", "run_id": "run-1", "task_name": "name-t1", "task_type": "add", "attempt": 1,
            "max_attempts": 3, "workflow": "wf", "version": 2, "lease_id": "L-t1", "worker_id": "w-1",
            "has_deadline": true, "traceparent": "00-abc-def-01", "deps": 1,
        })
    );
    stream.ack(&result, true, 0, "");

    // Input that does not fit: not run, fatal bad_input.
    stream.assign(assignment("t2", "add", r#"{"input": {"a": "x"}, "deps": {}}"#));
    let result = stream.result().await;
    let err = error(&result);
    assert_eq!((result.task_id.as_str(), err.r#type.as_str(), err.retryable), ("t2", "bad_input", false));
    stream.ack(&result, true, 0, "");

    // A missing dependency output fails the same way, from inside the handler.
    stream.assign(assignment("t3", "add", r#"{"input": {"a": 1, "b": 1}}"#));
    let result = stream.result().await;
    let err = error(&result);
    assert_eq!((err.r#type.as_str(), err.retryable), ("bad_input", false));
    stream.ack(&result, true, 0, "");

    worker.handle.shutdown();
    assert!(matches!(stream.recv_skipping_heartbeats().await, Some(Out::Drain(_))));
    assert!(stream.recv_skipping_heartbeats().await.is_none());
    let stats = worker.handle.stats();
    worker.finished().await.expect("clean exit");
    assert_eq!((stats.started, stats.succeeded, stats.failed, stats.accepted), (2, 1, 2, 3));
}

#[tokio::test]
async fn errors_and_panics_become_task_errors() {
    let mut server = FakeServer::start().await;
    let worker = Running::start(
        server
            .builder()
            .task("io", |_: serde_json::Value, _| async {
                std::fs::read("/definitely/not/here")?;
                Ok::<_, TaskError>(())
            })
            .task("fatal", |_: serde_json::Value, _| async {
                Err::<(), _>(TaskError::fatal("nope").with_type("Bad").with_details(json!({"k": 1})))
            })
            .task("panic", |_: serde_json::Value, _| async {
                if true {
                    panic!("boom");
                }
                Ok::<_, TaskError>(())
            }),
    );
    let mut stream = server.accept().await;
    stream.handshake(HOUR, 2 * HOUR).await;
    for (id, kind) in [("a", "io"), ("b", "fatal"), ("c", "panic"), ("d", "unknown")] {
        stream.assign(assignment(id, kind, "{}"));
        let err = error(&stream.result().await);
        let expected = match kind {
            "io" => ("std::io::error::Error", true),
            "fatal" => ("Bad", false),
            "panic" => ("panic", true),
            _ => ("unknown_task_type", true),
        };
        assert_eq!((err.r#type.as_str(), err.retryable), expected, "{kind}: {err:?}");
        if kind == "fatal" {
            assert_eq!((err.message.as_str(), err.details_json.as_str()), ("nope", r#"{"k":1}"#));
        }
        if kind == "panic" {
            assert!(err.message.contains("boom"), "{}", err.message);
        }
    }
    worker.handle.abort();
    worker.finished().await.expect("abort returns Ok");
}

#[tokio::test]
async fn heartbeats_follow_the_welcome_interval_and_list_held_leases() {
    let mut server = FakeServer::start().await;
    let gate = Arc::new(Semaphore::new(0));
    let g = gate.clone();
    let worker = Running::start(server.builder().task("hold", move |_: serde_json::Value, _| {
        let g = g.clone();
        async move {
            let _ = g.acquire().await;
            Ok::<_, TaskError>(())
        }
    }));
    let mut stream = server.accept().await;
    let interval = Duration::from_millis(50);
    stream.handshake(interval, Duration::from_secs(5)).await;
    assert!(stream.heartbeat().await.leases.is_empty());
    stream.assign(assignment("t1", "hold", "{}"));
    let mut gaps = Vec::new();
    let mut last = Instant::now();
    for _ in 0..6 {
        let hb = stream.heartbeat().await;
        let now = Instant::now();
        gaps.push(now - last);
        last = now;
        assert_eq!(hb.leases, [lease("t1", 1, "L-t1")]);
    }
    // The first gap is measured from the assignment, not from a heartbeat.
    for gap in &gaps[1..] {
        assert!(*gap >= Duration::from_millis(35) && *gap <= Duration::from_millis(500), "gaps {gaps:?}");
    }
    gate.add_permits(1);
    let result = stream.result().await;
    assert_eq!(result.task_id, "t1");
    stream.ack(&result, true, 0, "");
    // Once the result is sent the lease is no longer listed.
    loop {
        if stream.heartbeat().await.leases.is_empty() {
            break;
        }
    }
    worker.handle.abort();
    worker.finished().await.expect("ok");
}

#[tokio::test]
async fn never_more_than_slots_handlers_at_once_extra_assignments_queue() {
    let mut server = FakeServer::start().await;
    let gate = Arc::new(Semaphore::new(0));
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (g, r, p) = (gate.clone(), running.clone(), peak.clone());
    let worker =
        Running::start(server.builder().slots(2).task("work", move |_: serde_json::Value, ctx: TaskContext| {
            let (g, r, p, started_tx) = (g.clone(), r.clone(), p.clone(), started_tx.clone());
            async move {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                let _ = started_tx.send(ctx.task_id().to_owned());
                if let Ok(permit) = g.acquire().await {
                    permit.forget();
                }
                r.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, TaskError>(())
            }
        }));
    let mut stream = server.accept().await;
    stream.handshake(Duration::from_millis(20), Duration::from_secs(5)).await;
    let ids = ["a", "b", "c", "d", "e"];
    for id in ids {
        stream.assign(assignment(id, "work", "{}"));
    }
    // Two start; all five are held (listed in heartbeats) while three wait for a slot.
    let first: HashSet<String> = [within("start", started.recv()).await, within("start", started.recv()).await]
        .into_iter()
        .map(|s| s.expect("started"))
        .collect();
    assert_eq!(first, HashSet::from(["a".to_owned(), "b".to_owned()]), "FIFO: the first two run first");
    loop {
        let hb = stream.heartbeat().await;
        if hb.leases.len() == 5 {
            break;
        }
    }
    assert_eq!(worker.handle.stats().started, 2);
    assert_eq!(worker.handle.stats().in_flight, 5);
    gate.add_permits(ids.len());
    let mut done = HashSet::new();
    while done.len() < ids.len() {
        let result = stream.result().await;
        stream.ack(&result, true, 0, "");
        done.insert(result.task_id);
    }
    assert_eq!(peak.load(Ordering::SeqCst), 2, "at most `slots` handlers ran at once");
    assert_eq!(worker.handle.stats().started, 5);
    worker.handle.abort();
    worker.finished().await.expect("ok");
}
