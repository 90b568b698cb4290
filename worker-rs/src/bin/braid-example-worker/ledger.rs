//! The `--ledger` file: one flushed JSON line per task start, finish and result ack.

use braid_worker::{TaskOutcome, TaskRef, WorkerEvent};
use serde_json::{Value, json};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;

/// An append-only JSON-lines file.
pub(crate) struct Ledger {
    worker: String,
    state: Mutex<State>,
}

struct State {
    file: File,
    /// The server's id of the current stream.
    worker_id: String,
}

impl Ledger {
    pub(crate) fn open(path: &Path, worker: &str) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self { worker: worker.to_owned(), state: Mutex::new(State { file, worker_id: String::new() }) })
    }

    /// Writes the line of `event`, if it has one: `start`, `finish` (outcome `succeeded` or
    /// `failed`) or `ack` (outcome `accepted` or `rejected`).
    pub(crate) fn record(&self, event: &WorkerEvent) {
        let Ok(mut state) = self.state.lock() else { return };
        let (name, task, outcome, extra) = match event {
            WorkerEvent::Connected { worker_id, .. } => {
                state.worker_id.clone_from(worker_id);
                return;
            }
            WorkerEvent::TaskStarted { task } => ("start", task, Value::Null, json!({})),
            WorkerEvent::TaskFinished { task, outcome, started } => match outcome {
                TaskOutcome::Succeeded => ("finish", task, json!("succeeded"), json!({"started": started})),
                TaskOutcome::Failed(error) => (
                    "finish",
                    task,
                    json!("failed"),
                    json!({
                        "started": started,
                        "error_type": error.error_type(),
                        "retryable": error.is_retryable(),
                        "message": error.message(),
                    }),
                ),
            },
            WorkerEvent::ResultAcked { task, accepted, code, reason } => {
                let outcome = if *accepted { "accepted" } else { "rejected" };
                ("ack", task, json!(outcome), json!({"code": code, "reason": reason}))
            }
            _ => return,
        };
        let line = line(name, task, outcome, extra, &self.worker, &state.worker_id);
        let written = state.file.write_all(line.as_bytes()).and_then(|()| state.file.flush());
        if let Err(error) = written {
            tracing::error!(%error, "cannot write the ledger");
        }
    }
}

fn line(event: &str, task: &TaskRef, outcome: Value, extra: Value, worker: &str, worker_id: &str) -> String {
    let mut doc = json!({
        "event": event,
        "task_id": task.task_id,
        "attempt": task.attempt,
        "lease_id": task.lease_id,
        "task_type": task.task_type,
        "worker": worker,
        "worker_id": worker_id,
        "outcome": outcome,
        "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    });
    if let (Value::Object(doc), Value::Object(extra)) = (&mut doc, extra) {
        doc.extend(extra);
    }
    let mut text = doc.to_string();
    text.push('\n');
    text
}
