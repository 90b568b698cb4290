//! The worker's traces: one `handler` span a task attempt, a child of the assignment's `traceparent` (the control plane's `dispatch` span), exported through the worker's tracer provider.
//!
//! The provider is, in order: the one set with [`crate::WorkerBuilder::tracer_provider`] (the
//! caller owns it: flushed when the worker stops), an OTLP/gRPC exporter to
//! `BRAID_OTLP_ENDPOINT` (built when the worker starts, shut down when it stops), or the global
//! one (a no-op unless the application installed one).

use opentelemetry::global;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanBuilder, SpanKind, Status, TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::HashMap;
use std::sync::Mutex;

/// The OTLP/gRPC collector address (e.g. `http://127.0.0.1:4317`); unset or empty: no exporter.
pub const OTLP_ENDPOINT_ENV: &str = "BRAID_OTLP_ENDPOINT";

const TRACER: &str = "braid-worker";

/// The worker's tracer provider (see the module docs).
pub(crate) struct Traces {
    custom: Option<SdkTracerProvider>,
    endpoint: Option<String>,
    otlp: Mutex<Option<SdkTracerProvider>>,
}

/// What the handler span says about its attempt.
pub(crate) struct HandlerSpan<'a> {
    pub(crate) trace_context: &'a HashMap<String, String>,
    pub(crate) task_id: &'a str,
    pub(crate) run_id: &'a str,
    pub(crate) task_name: &'a str,
    pub(crate) task_type: &'a str,
    pub(crate) attempt: u32,
}

impl Traces {
    pub(crate) fn new(custom: Option<SdkTracerProvider>) -> Self {
        let endpoint = std::env::var(OTLP_ENDPOINT_ENV).ok().map(|e| e.trim().to_owned()).filter(|e| !e.is_empty());
        Self { custom, endpoint, otlp: Mutex::new(None) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<SdkTracerProvider>> {
        self.otlp.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Builds the OTLP exporter when `BRAID_OTLP_ENDPOINT` asks for one and no provider was
    /// set; call it on the runtime (the exporter's gRPC client lives there).
    pub(crate) fn start(&self) {
        let (None, Some(endpoint)) = (&self.custom, &self.endpoint) else { return };
        let mut otlp = self.lock();
        if otlp.is_some() {
            return;
        }
        match opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint.clone()).build() {
            Ok(exporter) => {
                *otlp = Some(
                    SdkTracerProvider::builder()
                        .with_resource(Resource::builder().with_service_name("braid-worker").build())
                        .with_batch_exporter(exporter)
                        .build(),
                );
            }
            Err(e) => tracing::warn!(error = %e, endpoint, "traces are off: the OTLP exporter could not be built"),
        }
    }

    /// Exports what is buffered: flushes a provider set on the builder, shuts down the OTLP one.
    pub(crate) async fn finish(&self) {
        let custom = self.custom.clone();
        let otlp = self.lock().take();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(p) = custom {
                let _ = p.force_flush();
            }
            if let Some(p) = otlp {
                let _ = p.shutdown();
            }
        })
        .await;
    }

    /// Starts the `handler` span of an attempt; the returned context holds it (and carries it
    /// to the handler, where `Context::current()` sees it). End it with [`end`].
    pub(crate) fn handler(&self, s: &HandlerSpan<'_>) -> Context {
        let parent = TraceContextPropagator::new().extract(s.trace_context);
        let builder = SpanBuilder::from_name("handler").with_kind(SpanKind::Consumer).with_attributes([
            KeyValue::new("braid.task_id", s.task_id.to_owned()),
            KeyValue::new("braid.run_id", s.run_id.to_owned()),
            KeyValue::new("braid.task_name", s.task_name.to_owned()),
            KeyValue::new("braid.task_type", s.task_type.to_owned()),
            KeyValue::new("braid.attempt", i64::from(s.attempt)),
        ]);
        let provider = self.custom.clone().or_else(|| self.lock().clone());
        match provider {
            Some(p) => parent.with_span(builder.start_with_context(&p.tracer(TRACER), &parent)),
            None => parent.with_span(builder.start_with_context(&global::tracer(TRACER), &parent)),
        }
    }
}

/// Ends the handler span in `cx` with the handler's outcome.
pub(crate) fn end(cx: &Context, error: Option<&str>) {
    let span = cx.span();
    if let Some(message) = error {
        span.set_status(Status::error(message.to_owned()));
    }
    span.end();
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceId};
    use opentelemetry_sdk::trace::InMemorySpanExporter;

    #[test]
    fn the_handler_span_continues_the_assignment_context() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        let traces = Traces::new(Some(provider));
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let trace_context = HashMap::from([("traceparent".to_owned(), parent.to_owned())]);
        let s = HandlerSpan {
            trace_context: &trace_context,
            task_id: "t",
            run_id: "r",
            task_name: "a",
            task_type: "echo",
            attempt: 1,
        };
        end(&traces.handler(&s), Some("boom"));
        let spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].name, "handler");
        assert_eq!(spans[0].span_context.trace_id(), TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap());
        assert_eq!(spans[0].parent_span_id, SpanId::from_hex("00f067aa0ba902b7").unwrap());
        assert!(matches!(spans[0].status, Status::Error { .. }));
    }

    #[test]
    fn without_a_context_the_handler_span_is_a_root() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        let traces = Traces::new(Some(provider));
        let none = HashMap::new();
        let s = HandlerSpan {
            trace_context: &none,
            task_id: "t",
            run_id: "r",
            task_name: "a",
            task_type: "echo",
            attempt: 1,
        };
        end(&traces.handler(&s), None);
        let spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].parent_span_id, SpanId::INVALID);
    }
}
