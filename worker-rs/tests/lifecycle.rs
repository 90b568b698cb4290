//! The SDK against a fake server: cancellation, deadlines, stale acks, drain, reconnects, lost leases.

mod support;

use braid_worker::{CancelReason, TaskContext, TaskError, WorkerEvent};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use support::*;
use tokio::sync::{Semaphore, mpsc};

const HOUR: Duration = Duration::from_secs(3600);

type Outcome = futures::future::BoxFuture<'static, Result<serde_json::Value, TaskError>>;
type Handler = Box<dyn Fn(serde_json::Value, TaskContext) -> Outcome + Send + Sync>;

/// A handler that reports its start, then returns when the gate opens or its token is cancelled
/// (reporting the cancel reason).
fn gated(
    gate: Arc<Semaphore>,
    started: mpsc::UnboundedSender<String>,
    reasons: mpsc::UnboundedSender<Option<CancelReason>>,
) -> Handler {
    Box::new(move |_, ctx| {
        let (gate, started, reasons) = (gate.clone(), started.clone(), reasons.clone());
        Box::pin(async move {
            let _ = started.send(ctx.task_id().to_owned());
            tokio::select! {
                permit = gate.acquire() => {
                    if let Ok(permit) = permit {
                        permit.forget();
                    }
                    Ok(json!({"done": ctx.task_id()}))
                }
                () = ctx.cancelled() => {
                    let _ = reasons.send(ctx.cancel_reason());
                    Err(TaskError::retryable("cancelled").with_type("cancelled"))
                }
            }
        })
    })
}

struct Probes {
    gate: Arc<Semaphore>,
    started: mpsc::UnboundedReceiver<String>,
    reasons: mpsc::UnboundedReceiver<Option<CancelReason>>,
}

fn probes() -> (Probes, Handler) {
    let gate = Arc::new(Semaphore::new(0));
    let (started_tx, started) = mpsc::unbounded_channel();
    let (reasons_tx, reasons) = mpsc::unbounded_channel();
    let handler = gated(gate.clone(), started_tx, reasons_tx);
    (Probes { gate, started, reasons }, handler)
}

impl Probes {
    async fn started(&mut self) -> String {
        within("a handler to start", self.started.recv()).await.expect("started")
    }

    async fn cancelled(&mut self) -> Option<CancelReason> {
        within("a handler to be cancelled", self.reasons.recv()).await.expect("cancelled")
    }
}

#[tokio::test]
async fn cancel_task_cancels_the_handler_token_and_its_result_is_still_sent() {
    let mut server = FakeServer::start().await;
    let (mut probes, handler) = probes();
    let worker = Running::start(server.builder().task("hold", handler));
    let mut stream = server.accept().await;
    stream.handshake(HOUR, 2 * HOUR).await;
    stream.assign(assignment("t1", "hold", "{}"));
    assert_eq!(probes.started().await, "t1");
    stream.send(In::Cancel(braid_worker::proto::CancelTask {
        task_id: "t1".to_owned(),
        attempt: 1,
        lease_id: "L-t1".to_owned(),
        reason: "run cancelled".to_owned(),
    }));
    assert_eq!(probes.cancelled().await, Some(CancelReason::Server("run cancelled".to_owned())));
    let result = stream.result().await;
    assert_eq!((result.task_id.as_str(), result.attempt, result.lease_id.as_str()), ("t1", 1, "L-t1"));
    assert_eq!(error(&result).r#type, "cancelled");
    worker.handle.abort();
    worker.finished().await.expect("ok");
}

#[tokio::test]
async fn a_newer_attempt_of_a_held_task_cancels_the_older_one() {
    let mut server = FakeServer::start().await;
    let (mut probes, handler) = probes();
    let worker = Running::start(server.builder().slots(2).task("hold", handler));
    let mut stream = server.accept().await;
    stream.handshake(HOUR, 2 * HOUR).await;
    stream.assign(assignment("t1", "hold", "{}"));
    probes.started().await;
    let mut retry = assignment("t1", "hold", "{}");
    retry.attempt = 2;
    retry.lease_id = "L-t1-2".to_owned();
    stream.assign(retry);
    assert_eq!(probes.cancelled().await, Some(CancelReason::Server("superseded by attempt 2".to_owned())));
    let old = stream.result().await;
    assert_eq!((old.attempt, old.lease_id.as_str()), (1, "L-t1"));
    probes.gate.add_permits(1);
    let new = stream.result().await;
    assert_eq!((new.attempt, new.lease_id.as_str()), (2, "L-t1-2"));
    worker.handle.abort();
    worker.finished().await.expect("ok");
}

#[tokio::test]
async fn the_deadline_cancels_the_handler_token() {
    let mut server = FakeServer::start().await;
    let (mut probes, handler) = probes();
    let worker = Running::start(server.builder().task("hold", handler));
    let mut stream = server.accept().await;
    stream.handshake(HOUR, 2 * HOUR).await;
    let mut a = assignment("t1", "hold", "{}");
    a.deadline = Some(prost_types::Timestamp::from(SystemTime::now() + Duration::from_millis(100)));
    stream.assign(a);
    assert_eq!(probes.started().await, "t1");
    assert_eq!(probes.cancelled().await, Some(CancelReason::DeadlineExceeded));
    assert_eq!(stream.result().await.task_id, "t1");
    // A deadline already past when the task would start: it does not run.
    let mut late = assignment("t2", "hold", "{}");
    late.deadline = Some(prost_types::Timestamp::from(SystemTime::now() - Duration::from_secs(1)));
    stream.assign(late);
    let err = error(&stream.result().await);
    assert_eq!((err.r#type.as_str(), err.retryable), ("timeout", true), "{err:?}");
    assert_eq!(worker.handle.stats().started, 1);
    worker.handle.abort();
    worker.finished().await.expect("ok");
}

#[tokio::test]
async fn a_stale_result_is_logged_and_never_sent_again() {
    let mut server = FakeServer::start().await;
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let worker = Running::start(
        server.builder().task("noop", |_: serde_json::Value, _| async { Ok::<_, TaskError>(json!({})) }).on_event(
            move |e| {
                if let WorkerEvent::ResultAcked { .. } = e {
                    let _ = events_tx.send(e.clone());
                }
            },
        ),
    );
    let mut stream = server.accept().await;
    stream.handshake(Duration::from_millis(20), HOUR).await;
    stream.assign(assignment("t1", "noop", "{}"));
    let result = stream.result().await;
    stream.ack(&result, false, 9, "lease L-t1 is not current: task re-leased as attempt 2");
    match within("the ack event", events.recv()).await {
        Some(WorkerEvent::ResultAcked { accepted, code, .. }) => assert_eq!((accepted, code), (false, 9)),
        other => panic!("expected ResultAcked, got {other:?}"),
    }
    // Drain and collect everything up to the end of the stream: no second result.
    worker.handle.shutdown();
    let mut rest = Vec::new();
    while let Some(message) = stream.recv().await {
        rest.push(message);
    }
    assert!(rest.iter().any(|m| matches!(m, Out::Drain(_))), "{rest:?}");
    assert!(!rest.iter().any(|m| matches!(m, Out::Result(_))), "the rejected result was sent again: {rest:?}");
    assert!(
        rest.iter().all(|m| !matches!(m, Out::Heartbeat(hb) if !hb.leases.is_empty())),
        "the rejected lease is no longer announced"
    );
    let stats = worker.handle.stats();
    assert_eq!((stats.succeeded, stats.accepted, stats.rejected), (1, 0, 1));
    worker.finished().await.expect("clean exit");
}

#[tokio::test]
async fn drain_sends_drain_finishes_the_running_task_reports_it_then_closes() {
    let mut server = FakeServer::start().await;
    let (mut probes, handler) = probes();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let worker = Running::start(
        server.builder().drain_timeout(Duration::from_secs(30)).task("hold", handler).on_event(move |e| {
            if let WorkerEvent::Draining { .. } = e {
                let _ = events_tx.send(e.clone());
            }
        }),
    );
    let mut stream = server.accept().await;
    stream.handshake(Duration::from_millis(20), HOUR).await;
    stream.assign(assignment("t1", "hold", "{}"));
    assert_eq!(probes.started().await, "t1");
    worker.handle.shutdown();
    assert!(matches!(stream.recv_skipping_heartbeats().await, Some(Out::Drain(_))));
    assert!(matches!(within("Draining", events.recv()).await, Some(WorkerEvent::Draining { .. })));
    // Still heartbeating the held lease while draining.
    assert_eq!(stream.heartbeat().await.leases, [lease("t1", 1, "L-t1")]);
    probes.gate.add_permits(1);
    let result = stream.result().await;
    assert_eq!(output(&result), json!({"done": "t1"}));
    stream.ack(&result, true, 0, "");
    assert!(stream.recv_skipping_heartbeats().await.is_none(), "the worker half-closes once acked");
    worker.finished().await.expect("clean exit");
}

#[tokio::test]
async fn drain_timeout_cancels_handlers_that_do_not_finish() {
    let mut server = FakeServer::start().await;
    let (mut probes, handler) = probes();
    let worker = Running::start(server.builder().drain_timeout(Duration::from_millis(50)).task("hold", handler));
    let mut stream = server.accept().await;
    stream.handshake(HOUR, 2 * HOUR).await;
    stream.assign(assignment("t1", "hold", "{}"));
    probes.started().await;
    worker.handle.shutdown();
    assert!(matches!(stream.recv_skipping_heartbeats().await, Some(Out::Drain(_))));
    assert_eq!(probes.cancelled().await, Some(CancelReason::Shutdown));
    let result = stream.result().await;
    assert_eq!(error(&result).r#type, "cancelled");
    stream.ack(&result, true, 0, "");
    assert!(stream.recv_skipping_heartbeats().await.is_none());
    worker.finished().await.expect("clean exit");
}

#[tokio::test]
async fn after_a_dropped_stream_the_worker_reconnects_reannounces_its_lease_and_reports_there() {
    let mut server = FakeServer::start().await;
    let (mut probes, handler) = probes();
    let worker = Running::start(server.builder().task("hold", handler));
    let mut first = server.accept().await;
    first.handshake(HOUR, 2 * HOUR).await;
    first.assign(assignment("t1", "hold", "{}"));
    probes.started().await;
    drop(first);

    let mut second = server.accept().await;
    second.handshake(HOUR, 2 * HOUR).await;
    assert_eq!(second.heartbeat().await.leases, [lease("t1", 1, "L-t1")]);
    probes.gate.add_permits(1);
    let result = second.result().await;
    assert_eq!((result.task_id.as_str(), result.attempt, result.lease_id.as_str()), ("t1", 1, "L-t1"));
    assert_eq!(worker.handle.stats().connects, 2);
    second.ack(&result, true, 0, "");
    worker.handle.abort();
    worker.finished().await.expect("ok");
}

#[tokio::test]
async fn an_unacknowledged_result_is_sent_again_on_the_next_stream() {
    let mut server = FakeServer::start().await;
    let worker =
        Running::start(server.builder().task("noop", |_: serde_json::Value, _| async { Ok::<_, TaskError>(7) }));
    let mut first = server.accept().await;
    first.handshake(HOUR, 2 * HOUR).await;
    first.assign(assignment("t1", "noop", "{}"));
    assert_eq!(output(&first.result().await), json!(7));
    first.fail(tonic::Status::unavailable("replica going away"));
    drop(first);

    let mut second = server.accept().await;
    second.handshake(HOUR, 2 * HOUR).await;
    // The re-announce lists the lease whose result is not settled, then the result follows.
    assert_eq!(second.heartbeat().await.leases, [lease("t1", 1, "L-t1")]);
    let again = second.result().await;
    assert_eq!((again.task_id.as_str(), again.lease_id.as_str()), ("t1", "L-t1"));
    second.ack(&again, true, 0, "");
    worker.handle.shutdown();
    assert!(matches!(second.recv_skipping_heartbeats().await, Some(Out::Drain(_))));
    assert!(second.recv_skipping_heartbeats().await.is_none());
    worker.finished().await.expect("clean exit");
}

#[tokio::test]
async fn a_lease_that_cannot_be_extended_for_a_ttl_cancels_the_handler() {
    let mut server = FakeServer::start().await;
    let (mut probes, handler) = probes();
    let worker = Running::start(server.builder().task("hold", handler));
    let worker_stats = worker.handle.clone();
    let mut first = server.accept().await;
    first.handshake(Duration::from_millis(30), Duration::from_millis(300)).await;
    first.assign(assignment("t1", "hold", "{}"));
    probes.started().await;
    server.refuse(true);
    drop(first);
    assert_eq!(probes.cancelled().await, Some(CancelReason::LeaseLost));
    server.refuse(false);
    let mut second = server.accept().await;
    second.handshake(HOUR, 2 * HOUR).await;
    assert_eq!(second.heartbeat().await.leases, [lease("t1", 1, "L-t1")]);
    let result = second.result().await;
    assert_eq!((result.task_id.as_str(), error(&result).r#type.as_str()), ("t1", "cancelled"));
    second.ack(&result, false, 9, "lease expired");
    worker.handle.shutdown();
    while second.recv().await.is_some() {}
    worker.finished().await.expect("clean exit");
    assert_eq!(worker_stats.stats().rejected, 1);
}

#[tokio::test]
async fn a_worker_refused_for_good_stops_with_an_error() {
    let server = FakeServer::start().await;
    server.refuse_with(Some(tonic::Code::Unauthenticated));
    let worker =
        Running::start(server.builder().task("noop", |_: serde_json::Value, _| async { Ok::<_, TaskError>(()) }));
    match worker.finished().await {
        Err(braid_worker::WorkerError::Refused(status)) => assert_eq!(status.code(), tonic::Code::Unauthenticated),
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[tokio::test]
async fn a_drain_with_nothing_held_returns_even_without_a_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let worker = Running::start(
        braid_worker::Worker::builder()
            .endpoint(endpoint)
            .reconnect_backoff(Duration::from_millis(1), Duration::from_millis(5))
            .task("noop", |_: serde_json::Value, _| async { Ok::<_, TaskError>(()) }),
    );
    worker.handle.shutdown();
    worker.finished().await.expect("returns at once");
}
