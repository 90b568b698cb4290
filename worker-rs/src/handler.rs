//! Type erasure of typed handlers, and parsing of the assignment's `{"input", "deps"}` envelope.

use crate::{TaskContext, TaskError};
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::future::Future;
use std::sync::Arc;

/// The handler's future, once its input is decoded: called with the context, it runs the
/// handler and serializes the output.
pub(crate) type Prepared = Box<dyn FnOnce(TaskContext) -> BoxFuture<'static, Result<String, TaskError>> + Send>;

/// A handler taking the `input` part as JSON: decoding it (a non-retryable `bad_input` error when
/// it does not fit) comes before the handler is called.
pub(crate) type BoxedHandler = Arc<dyn Fn(Value) -> Result<Prepared, TaskError> + Send + Sync>;

/// Wraps a typed handler: deserializes its input (`bad_input` on failure, handler not called)
/// and serializes its output (`bad_output` on failure).
pub(crate) fn boxed<I, O, E, F, Fut>(f: F) -> BoxedHandler
where
    F: Fn(I, TaskContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send + 'static,
    I: DeserializeOwned + Send + 'static,
    O: Serialize,
    E: Into<TaskError>,
{
    let f = Arc::new(f);
    Arc::new(move |input: Value| -> Result<Prepared, TaskError> {
        let input = I::deserialize(input)
            .map_err(|e| TaskError::fatal(format!("input does not fit the handler: {e}")).with_type("bad_input"))?;
        let f = f.clone();
        Ok(Box::new(move |ctx: TaskContext| -> BoxFuture<'static, Result<String, TaskError>> {
            let fut = f(input, ctx);
            Box::pin(async move {
                let output = fut.await.map_err(Into::into)?;
                serde_json::to_string(&output).map_err(|e| {
                    TaskError::fatal(format!("output cannot be serialized as JSON: {e}")).with_type("bad_output")
                })
            })
        }))
    })
}

/// The two parts of `TaskAssignment.input_json`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Envelope {
    pub(crate) input: Value,
    pub(crate) deps: Map<String, Value>,
}

/// Parses `{"input": ..., "deps": {...}}`. Blank text is an empty envelope; a missing `input` is
/// `null`, a missing or `null` `deps` is empty. Anything else that is not of that shape is a
/// non-retryable `bad_input` error.
pub(crate) fn parse_envelope(text: &str) -> Result<Envelope, TaskError> {
    if text.trim().is_empty() {
        return Ok(Envelope::default());
    }
    let bad =
        |why: String| TaskError::fatal(format!("input_json is not a task envelope: {why}")).with_type("bad_input");
    let Value::Object(mut doc) = serde_json::from_str::<Value>(text).map_err(|e| bad(e.to_string()))? else {
        return Err(bad("not a JSON object".to_owned()));
    };
    let input = doc.remove("input").unwrap_or(Value::Null);
    let deps = match doc.remove("deps") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(deps)) => deps,
        Some(_) => return Err(bad("\"deps\" is not an object".to_owned())),
    };
    Ok(Envelope { input, deps })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_shapes() {
        let e = parse_envelope(r#"{"input": {"a": 1}, "deps": {"fetch": [1, 2]}}"#).expect("parses");
        assert_eq!(e.input, json!({"a": 1}));
        assert_eq!(e.deps.get("fetch"), Some(&json!([1, 2])));
        assert_eq!(parse_envelope("  ").expect("blank"), Envelope::default());
        assert_eq!(parse_envelope(r#"{"deps": null}"#).expect("no input").input, Value::Null);
        for bad in ["[1]", "{", r#"{"deps": 3}"#] {
            let e = parse_envelope(bad).expect_err(bad);
            assert_eq!((e.error_type(), e.is_retryable()), ("bad_input", false));
        }
    }
}
