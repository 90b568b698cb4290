//! What the executors share: the request document, the attempt's facts as name/value pairs, and turning raw output into a result.

use crate::{TaskContext, TaskError};
use serde_json::{Value, json};
use std::time::Duration;

/// The document an executor sends: `{"input": <run input>, "deps": {<task>: <output>, ...}}`,
/// the same shape the server sends to workers.
pub(crate) fn request_document(input: &Value, ctx: &TaskContext) -> Vec<u8> {
    json!({"input": input, "deps": ctx.deps_raw()}).to_string().into_bytes()
}

/// The attempt's facts, by lower-case dash-separated name (`task-id`, `attempt`, …): sent as
/// `Braid-*` headers by HTTP and as `BRAID_*` variables by a process. `deadline` is RFC 3339.
pub(crate) fn attempt_fields(ctx: &TaskContext) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("task-id", ctx.task_id().to_owned()),
        ("run-id", ctx.run_id().to_owned()),
        ("workflow", ctx.workflow_name().to_owned()),
        ("task-name", ctx.task_name().to_owned()),
        ("task-type", ctx.task_type().to_owned()),
        ("attempt", ctx.attempt().to_string()),
        ("max-attempts", ctx.max_attempts().to_string()),
    ];
    if let Some(deadline) = ctx.deadline() {
        fields.push(("deadline", humantime::format_rfc3339_millis(deadline).to_string()));
    }
    fields
}

/// The run's W3C trace context entries (`traceparent`, `tracestate`) that are set.
pub(crate) fn trace_fields(ctx: &TaskContext) -> Vec<(&'static str, String)> {
    ["traceparent", "tracestate"]
        .into_iter()
        .filter_map(|name| ctx.trace_context().get(name).filter(|v| !v.is_empty()).map(|v| (name, v.clone())))
        .collect()
}

/// Parses an executor's output; text that is not one JSON document is a non-retryable
/// `bad_output` error naming `source` and showing the text's start.
pub(crate) fn parse_output(bytes: &[u8], source: &str) -> Result<Value, TaskError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let shown = if bytes.iter().all(u8::is_ascii_whitespace) {
            "it is empty (print a JSON document such as {} or null)".to_owned()
        } else {
            format!("it starts with {:?}", snippet(bytes, 200))
        };
        TaskError::fatal(format!("{source} is not JSON ({e}): {shown}")).with_type("bad_output")
    })
}

/// The non-retryable error of output beyond `limit` bytes.
pub(crate) fn too_large(source: &str, limit: usize) -> TaskError {
    TaskError::fatal(format!("{source} is larger than {limit} bytes")).with_type("output_too_large")
}

/// The retryable error of an attempt stopped by the executor's own timeout.
pub(crate) fn timed_out(what: &str, after: Duration) -> TaskError {
    TaskError::retryable(format!("{what} did not finish within {}", humantime::format_duration(after)))
        .with_type("timeout")
}

/// At most `max` bytes of `bytes` as text (lossy), with `…` when cut, trimmed.
pub(crate) fn snippet(bytes: &[u8], max: usize) -> String {
    let cut = bytes.len() > max;
    let mut text = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).trim().to_owned();
    if cut {
        text.push('…');
    }
    text
}

/// The last `max` bytes of `bytes` as text (lossy), with `…` in front when cut, trimmed.
pub(crate) fn tail(bytes: &[u8], max: usize) -> String {
    let cut = bytes.len() > max;
    let text = String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(max)..]).trim().to_owned();
    if cut { format!("…{text}") } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_parsing_and_text_bounds() {
        assert_eq!(parse_output(b" {\"a\": 1}\n", "stdout").expect("json"), json!({"a": 1}));
        let e = parse_output(b"", "stdout").expect_err("empty");
        assert_eq!((e.error_type(), e.is_retryable()), ("bad_output", false));
        assert!(e.message().contains("stdout is not JSON") && e.message().contains("empty"), "{e}");
        let e = parse_output(b"<html>oops</html>", "the response body").expect_err("html");
        assert!(e.message().contains("\"<html>oops</html>\""), "{e}");
        assert_eq!(snippet(b"abcdef", 3), "abc…");
        assert_eq!(tail(b"abcdef", 3), "…def");
        assert_eq!(tail(b" ab \n", 10), "ab");
    }
}
