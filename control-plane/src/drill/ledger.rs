//! Worker ledgers: the JSON lines each example worker appends per task start, finish and result ack.

use super::process::Ending;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One line of a ledger.
#[derive(Debug, Clone, Deserialize)]
pub struct Line {
    /// `start`, `finish` or `ack`.
    pub event: String,
    pub task_id: String,
    pub attempt: u32,
    pub lease_id: String,
    /// The server's stream id the worker was on when it wrote the line.
    #[serde(default)]
    pub worker_id: String,
    /// finish: `succeeded` or `failed`; ack: `accepted` or `rejected`.
    #[serde(default)]
    pub outcome: Option<String>,
    /// ack: the `google.rpc.Code` (0, 9, 3).
    #[serde(default)]
    pub code: Option<i32>,
    #[serde(default)]
    pub error_type: Option<String>,
}

impl Line {
    pub fn key(&self) -> (String, u32, String) {
        (self.task_id.clone(), self.attempt, self.lease_id.clone())
    }

    pub fn is(&self, event: &str, outcome: &str) -> bool {
        self.event == event && self.outcome.as_deref() == Some(outcome)
    }
}

/// The ledger of one worker process (one generation of a named worker).
#[derive(Debug, Clone)]
pub struct Ledger {
    pub worker: String,
    pub generation: u32,
    pub path: PathBuf,
    pub ending: Ending,
    pub lines: Vec<Line>,
    /// Lines that did not parse (a process killed mid-write can leave half a line).
    pub unreadable: usize,
}

impl Ledger {
    pub fn read(worker: &str, generation: u32, path: &Path, ending: Ending) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut lines = Vec::new();
        let mut unreadable = 0;
        for l in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Line>(l) {
                Ok(line) => lines.push(line),
                Err(_) => unreadable += 1,
            }
        }
        Self { worker: worker.to_owned(), generation, path: path.to_path_buf(), ending, lines, unreadable }
    }

    /// `name.generation`, as the ledger's file is named.
    pub fn label(&self) -> String {
        format!("{}.{}", self.worker, self.generation)
    }

    /// Finished attempts with no ack yet.
    pub fn unacked(&self) -> usize {
        let acked: std::collections::HashSet<_> =
            self.lines.iter().filter(|l| l.event == "ack").map(Line::key).collect();
        self.lines.iter().filter(|l| l.event == "finish" && !acked.contains(&l.key())).count()
    }
}
