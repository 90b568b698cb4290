//! Traces: a run is one trace (`trigger_run`, then `dispatch`, then the worker's `handler`), proved over real gRPC with in-memory exporters on SQLite and PostgreSQL.

mod common;

use braid_control_plane::app::{self, Listeners};
use braid_control_plane::engine::trigger::TriggerRequest;
use braid_control_plane::store::entity::run;
use braid_control_plane::telemetry;
use braid_worker::{TaskContext, TaskError, Worker, WorkerEvent};
use common::{TestDb, tenant, yaml};
use opentelemetry::Context;
use opentelemetry::trace::{TraceContextExt, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use sea_orm::EntityTrait;
use serde_json::Value;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const WORKFLOW: &str = "name: traced\ntasks:\n  - {name: a, task_type: echo}\n";

/// The control plane's spans: one provider for the process (the tests of this file share it and
/// tell their spans apart by run id).
fn control_plane_spans() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        telemetry::install_tracer_provider(SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build());
        exporter
    })
}

fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
}

fn the_one<'a>(spans: &'a [SpanData], what: &str, pick: impl Fn(&SpanData) -> bool) -> &'a SpanData {
    let found: Vec<&SpanData> = spans.iter().filter(|s| pick(s)).collect();
    assert_eq!(found.len(), 1, "exactly one {what} span, got {found:#?}");
    found[0]
}

async fn one_trace(db: &TestDb) {
    let cp_spans = control_plane_spans();
    db.engine.put_workflow(&tenant(), &yaml(WORKFLOW)).await.unwrap();
    let any = "127.0.0.1:0".parse().unwrap();
    let listeners = Listeners::bind(any, any).await.unwrap();
    let grpc = listeners.grpc_addr();
    let server_stop = CancellationToken::new();
    let server = tokio::spawn(app::serve(db.engine.clone(), listeners, app::AuthMode::Off.into(), server_stop.clone()));

    let worker_spans = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(worker_spans.clone()).build();
    let (seen_tx, mut seen) = mpsc::unbounded_channel::<TraceId>();
    let (done_tx, mut done) = mpsc::unbounded_channel::<()>();
    let worker = Worker::builder()
        .endpoint(format!("http://{grpc}"))
        .task("echo", move |input: Value, _ctx: TaskContext| {
            // The handler runs inside its span (both the call and the future it returns): what it
            // starts joins the run's trace.
            let seen = seen_tx.clone();
            let _ = seen.send(Context::current().span().span_context().trace_id());
            async move {
                let _ = seen.send(Context::current().span().span_context().trace_id());
                Ok::<_, TaskError>(input)
            }
        })
        // A clone stays here: the last one dropped shuts the exporter down, which empties it.
        .tracer_provider(provider.clone())
        .on_event(move |e| {
            if let WorkerEvent::TaskFinished { .. } = e {
                let _ = done_tx.send(());
            }
        })
        .build()
        .unwrap();
    let worker_stop = CancellationToken::new();
    let running = tokio::spawn(worker.run_until(worker_stop.clone().cancelled_owned()));

    let req = TriggerRequest { workflow_name: "traced".into(), input_json: r#"{"x": 1}"#.into(), ..Default::default() };
    let run_id = db.engine.trigger_run(&tenant(), &req).await.unwrap().run.run.id;
    tokio::time::timeout(Duration::from_secs(30), done.recv()).await.expect("the worker finished the task").unwrap();
    worker_stop.cancel();
    running.await.unwrap().unwrap();
    server_stop.cancel();
    server.await.unwrap().unwrap();

    let cp = cp_spans.get_finished_spans().unwrap();
    let trigger = the_one(&cp, "trigger_run", |s| {
        s.name == "trigger_run" && attr(s, "braid.run_id").as_deref() == Some(&run_id.to_string())
    });
    let trace_id = trigger.span_context.trace_id();
    let handlers = worker_spans.get_finished_spans().unwrap();
    let handler = the_one(&handlers, "handler", |s| s.name == "handler");
    assert_eq!(attr(handler, "braid.run_id"), Some(run_id.to_string()));
    assert_eq!(handler.span_context.trace_id(), trace_id, "the worker's span joins the trigger's trace");
    let dispatch = the_one(&cp, "dispatch", |s| s.span_context.span_id() == handler.parent_span_id);
    assert_eq!(dispatch.name, "dispatch", "the handler span is a child of the dispatch span");
    assert_eq!(dispatch.span_context.trace_id(), trace_id);
    assert_eq!(dispatch.parent_span_id, trigger.span_context.span_id(), "dispatch is a child of the trigger");
    assert_eq!(seen.recv().await, Some(trace_id), "the handler's call sees its span as the current context");
    assert_eq!(seen.recv().await, Some(trace_id), "the handler's future sees its span as the current context");
    drop(provider);

    // What dispatch read: the trigger's context, stored on the run.
    let stored = run::Entity::find_by_id(run_id).one(db.store.conn()).await.unwrap().unwrap();
    let expected = format!("00-{trace_id}-{}-01", trigger.span_context.span_id());
    assert_eq!(stored.trace_context.as_deref(), Some(expected.as_str()));
}

on_both_backends!(a_run_is_one_trace, one_trace);
