//! The control plane's spans of a run (`trigger_run`, then one `dispatch` a task attempt), carried between requests as W3C `traceparent` strings.
//!
//! Off (the default) until a tracer provider is installed ([`super::install_tracer_provider`]):
//! then every function here returns None at once, so the hot path pays one atomic load.

use opentelemetry::global::{self, BoxedSpan};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use uuid::Uuid;

/// The W3C header (and map key in `TaskAssignment.trace_context`) carrying a span's context.
pub const TRACEPARENT: &str = "traceparent";

const TRACER: &str = "braid-control-plane";

static ENABLED: AtomicBool = AtomicBool::new(false);

pub(super) fn enable() {
    ENABLED.store(true, Ordering::Release);
}

/// Whether spans are recorded (a tracer provider is installed).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

/// A started span; it ends when dropped.
#[derive(Debug)]
pub struct Started {
    cx: Context,
}

impl Started {
    fn start(name: &'static str, kind: SpanKind, parent: &Context, attributes: Vec<KeyValue>) -> Self {
        let tracer = global::tracer(TRACER);
        let span: BoxedSpan =
            tracer.span_builder(name).with_kind(kind).with_attributes(attributes).start_with_context(&tracer, parent);
        Self { cx: parent.with_span(span) }
    }

    /// The span's context as a W3C `traceparent` (None when it is not sampled-in or invalid).
    pub fn traceparent(&self) -> Option<String> {
        let mut carrier = HashMap::new();
        TraceContextPropagator::new().inject_context(&self.cx, &mut carrier);
        carrier.remove(TRACEPARENT)
    }
}

/// The span of one run's trigger: a child of the current context (a root when there is none).
pub fn trigger_run(run_id: Uuid, workflow: &str) -> Option<Started> {
    enabled().then(|| {
        let attributes = vec![
            KeyValue::new("braid.run_id", run_id.to_string()),
            KeyValue::new("braid.workflow", workflow.to_owned()),
        ];
        Started::start("trigger_run", SpanKind::Server, &Context::current(), attributes)
    })
}

/// The span of one task attempt's dispatch, a child of the run's `trigger_run` (`parent`, as
/// stored on the run); None when traces are off or the run has no (valid) trace context.
pub fn dispatch(parent: Option<&str>, task_id: Uuid, task_name: &str, attempt: u32) -> Option<Started> {
    if !enabled() {
        return None;
    }
    let parent = parse(parent?)?;
    let attributes = vec![
        KeyValue::new("braid.task_id", task_id.to_string()),
        KeyValue::new("braid.task_name", task_name.to_owned()),
        KeyValue::new("braid.attempt", i64::from(attempt)),
    ];
    Some(Started::start("dispatch", SpanKind::Producer, &parent, attributes))
}

/// The remote context a `traceparent` names; None when it does not parse.
fn parse(traceparent: &str) -> Option<Context> {
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    cx.span().span_context().is_valid().then_some(cx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_valid_traceparents() {
        assert!(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_some());
        assert!(parse("garbage").is_none());
        assert!(parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
    }
}
