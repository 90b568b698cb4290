//! Contexts for the executors' unit tests: an attempt with dependencies and a cancellation handle.

use crate::TaskContext;
use crate::context::{Attempt, CancelSignal};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, SystemTime};

/// Bound on every wait in these tests.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Awaits `fut`, panicking after [`WAIT`].
pub(crate) async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A context of attempt 2 of 3 of task `t-1` (type `thumb`) with `deps`, a deadline in an hour
/// and a `traceparent`; the signal cancels it.
pub(crate) fn context(deps: Value) -> (TaskContext, CancelSignal) {
    let deps: Map<String, Value> = match deps {
        Value::Object(deps) => deps,
        _ => Map::new(),
    };
    let attempt = Attempt {
        task_id: "t-1".to_owned(),
        run_id: "r-1".to_owned(),
        workflow_name: "wf".to_owned(),
        workflow_version: 1,
        task_name: "make-thumb".to_owned(),
        task_type: "thumb".to_owned(),
        attempt: 2,
        max_attempts: 3,
        lease_id: "L-1".to_owned(),
        deadline: Some(SystemTime::now() + Duration::from_secs(3600)),
        trace_context: HashMap::from([(
            "traceparent".to_owned(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
        )]),
        worker_id: "w-1".to_owned(),
    };
    let signal = CancelSignal::default();
    (TaskContext::new(attempt, deps, signal.clone()), signal)
}
