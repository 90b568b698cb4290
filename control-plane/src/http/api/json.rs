//! The dashboard API's JSON shapes, made from engine records (field names are the contract in docs/dashboard.md).

use crate::domain::blockers::Blocker;
use crate::domain::payload_ref::PayloadRef;
use crate::domain::records::{Run, Task, TaskAttempt, TaskError};
use crate::domain::state::TaskState;
use crate::store::insight::TaskCounts;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Longest text of a JSON document shown inline; longer ones are cut and offered for download.
pub const INLINE_JSON_LIMIT: usize = 64 * 1024;

pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub fn opt_time(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(time)
}

#[derive(Debug, Serialize)]
pub struct RunJson {
    pub id: String,
    pub workflow: String,
    pub version: u32,
    pub state: &'static str,
    pub trigger_source: &'static str,
    pub idempotency_key: Option<String>,
    pub reason: Option<String>,
    pub priority: &'static str,
    pub concurrency_key: Option<String>,
    pub schedule_id: Option<String>,
    pub scheduled_for: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_counts: Option<BTreeMap<&'static str, u32>>,
}

impl RunJson {
    pub fn new(r: &Run, counts: Option<&TaskCounts>) -> Self {
        Self {
            id: r.id.to_string(),
            workflow: r.workflow_name.clone(),
            version: r.workflow_version,
            state: r.state.as_str(),
            trigger_source: r.trigger_source.as_str(),
            idempotency_key: r.idempotency_key.clone(),
            reason: r.reason.clone(),
            priority: r.priority.as_str(),
            concurrency_key: r.concurrency_key.clone(),
            schedule_id: r.schedule.map(|s| s.schedule_id.to_string()),
            scheduled_for: r.schedule.map(|s| time(s.nominal)),
            created_at: time(r.created_at),
            started_at: opt_time(r.started_at),
            finished_at: opt_time(r.finished_at),
            task_counts: counts
                .map(|c| TaskState::ALL.iter().map(|s| (s.as_str(), c.get(s).copied().unwrap_or(0))).collect()),
        }
    }
}

/// A JSON document as shown: pretty, cut at [`INLINE_JSON_LIMIT`] bytes, with where to get all of it.
#[derive(Debug, Serialize)]
pub struct Blob {
    pub size: usize,
    pub truncated: bool,
    pub text: String,
    pub download: String,
    /// Kept in object storage (nothing of it is shown; `download` serves it, verified).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stored: bool,
    /// Its SHA-256, when kept in object storage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl Blob {
    pub fn new(raw: &str, download: String) -> Self {
        let pretty = serde_json::from_str::<Value>(raw)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| raw.to_owned());
        let truncated = pretty.len() > INLINE_JSON_LIMIT;
        let text =
            if truncated { pretty[..floor_char_boundary(&pretty, INLINE_JSON_LIMIT)].to_owned() } else { pretty };
        Self { size: raw.len(), truncated, text, download, stored: false, sha256: None }
    }

    /// A document kept in object storage: its size and checksum, and where to download it.
    pub fn stored(r: &PayloadRef, download: String) -> Self {
        let sha256 = (!r.sha256.is_empty()).then(|| r.sha256.clone());
        let text = match &sha256 {
            Some(h) => format!("(kept in object storage: {} bytes, sha256 {h})", r.size),
            None => format!("(assembled from the tasks' outputs: {} bytes)", r.size),
        };
        Self {
            size: usize::try_from(r.size).unwrap_or(usize::MAX),
            truncated: true,
            text,
            download,
            stored: true,
            sha256,
        }
    }

    /// The blob of a document that is inline (`doc`) or kept at `r`.
    pub fn of(doc: Option<&str>, r: Option<&PayloadRef>, download: String) -> Option<Self> {
        match (doc, r) {
            (_, Some(r)) => Some(Self::stored(r, download)),
            (Some(doc), None) => Some(Self::new(doc, download)),
            (None, None) => None,
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[derive(Debug, Serialize)]
pub struct ErrorJson {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub retryable: bool,
    pub details: Option<String>,
}

impl From<&TaskError> for ErrorJson {
    fn from(e: &TaskError) -> Self {
        Self { message: e.message.clone(), kind: e.kind.clone(), retryable: e.retryable, details: e.details.clone() }
    }
}

#[derive(Debug, Serialize)]
pub struct AttemptJson {
    pub attempt: u32,
    pub worker_id: Option<String>,
    pub worker_name: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub outcome: Option<String>,
    pub error: Option<ErrorJson>,
}

impl AttemptJson {
    pub fn new(a: &TaskAttempt, names: &HashMap<String, String>) -> Self {
        Self {
            attempt: a.attempt,
            worker_name: a.worker_id.as_ref().and_then(|w| names.get(w).cloned()),
            worker_id: a.worker_id.clone(),
            started_at: time(a.started_at),
            finished_at: opt_time(a.finished_at),
            outcome: a.outcome.clone(),
            error: a.error.as_ref().map(ErrorJson::from),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct WaitingOn {
    pub task: String,
    pub state: &'static str,
}

#[derive(Debug, Serialize)]
pub struct BlockerJson {
    pub kind: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting_on: Vec<WaitingOn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_type: Option<String>,
}

impl BlockerJson {
    pub fn new(b: &Blocker) -> Self {
        let mut out =
            Self { kind: b.kind(), message: b.message(), waiting_on: Vec::new(), until: None, task_type: None };
        match b {
            Blocker::Dependencies(deps) => {
                out.waiting_on = deps.iter().map(|(t, s)| WaitingOn { task: t.clone(), state: s.as_str() }).collect();
            }
            Blocker::Backoff(until) => out.until = Some(time(*until)),
            Blocker::NoWorker(t) | Blocker::Dispatching(t) | Blocker::WorkersBusy { task_type: t, .. } => {
                out.task_type = Some(t.clone());
            }
            Blocker::RunQueued(_) | Blocker::RunFinished(_) => {}
        }
        out
    }
}

#[derive(Debug, Serialize)]
pub struct TaskJson {
    pub id: String,
    pub name: String,
    pub task_type: String,
    pub state: &'static str,
    pub depends_on: Vec<String>,
    pub attempt: u32,
    pub max_attempts: u32,
    pub available_at: String,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub output: Option<Blob>,
    pub input_download: String,
    pub last_error: Option<ErrorJson>,
    pub attempts: Vec<AttemptJson>,
    pub blocker: Option<BlockerJson>,
}

impl TaskJson {
    pub fn new(t: &Task, blocker: Option<&Blocker>, names: &HashMap<String, String>) -> Self {
        let name = percent_encoding::utf8_percent_encode(&t.name, percent_encoding::NON_ALPHANUMERIC);
        let base = format!("/api/v1/runs/{}/tasks/{name}", t.run_id);
        Self {
            id: t.id.to_string(),
            name: t.name.clone(),
            task_type: t.task_type.clone(),
            state: t.state.as_str(),
            depends_on: t.depends_on.clone(),
            attempt: t.attempt,
            max_attempts: t.max_attempts,
            available_at: time(t.available_at),
            created_at: time(t.created_at),
            finished_at: opt_time(t.finished_at),
            output: Blob::of(t.output.as_deref(), t.output_ref.as_ref(), format!("{base}/output")),
            input_download: format!("{base}/input"),
            last_error: t.last_error.as_ref().map(ErrorJson::from),
            attempts: t.attempts.iter().map(|a| AttemptJson::new(a, names)).collect(),
            blocker: blocker.map(BlockerJson::new),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_document_is_cut_on_a_character_boundary_and_offered_whole() {
        let big = serde_json::json!({"s": "é".repeat(INLINE_JSON_LIMIT)}).to_string();
        let b = Blob::new(&big, "/d".into());
        assert!(b.truncated);
        assert_eq!(b.size, big.len());
        assert!(b.text.len() <= INLINE_JSON_LIMIT && b.text.len() > INLINE_JSON_LIMIT - 4);
        let small = Blob::new(r#"{"a":1}"#, "/d".into());
        assert!(!small.truncated);
        assert_eq!(small.text, "{\n  \"a\": 1\n}");
    }
}
