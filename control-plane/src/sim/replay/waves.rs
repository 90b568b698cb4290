//! Replay in waves: any definition version played as fast as it goes, each attempt ending as recorded.

use super::{Driver, Planned, Recording, Replay, recorded_outcome};
use crate::domain::definition::WorkflowDefinition;
use crate::domain::records::TaskError;
use crate::domain::state::TaskState;
use crate::engine::complete::Outcome;
use crate::sim::SimError;
use std::collections::BTreeMap;

/// Most rounds before a replay gives up (a definition can need at most attempts × tasks).
const MAX_WAVES: u32 = 100_000;

/// Plays `def` (the recorded version or another one) with the recording's outcomes: each
/// round leases every ready task (waiting out backoffs), then ends each attempt as the
/// recording says. An attempt with no recording (a task the recorded version did not have,
/// or more attempts than were recorded) is assumed: a task whose recorded attempts all failed
/// fails again the same way, any other succeeds with its recorded output (or `null`).
pub async fn replay_waves(def: &WorkflowDefinition, rec: &Recording) -> Result<Replay, SimError> {
    let mut d = Driver::start(def, rec).await?;
    let mut notes = Vec::new();
    let mut waves: BTreeMap<String, u32> = BTreeMap::new();
    for wave in 1..=MAX_WAVES {
        let detail = d.detail().await?;
        if detail.run.state.is_terminal() {
            break;
        }
        let mut ready: Vec<String> =
            detail.tasks.iter().filter(|t| t.state == TaskState::Ready).map(|t| t.name.clone()).collect();
        if ready.is_empty() {
            break;
        }
        ready.sort();
        let leased = d.lease(&ready).await?;
        if leased.is_empty() {
            notes.push(format!("round {wave}: ready tasks {ready:?} could not be leased; the replay stops"));
            break;
        }
        for (task, n) in leased {
            waves.entry(task.clone()).or_insert(wave);
            match recorded_outcome(rec, &task, n).unwrap_or_else(|| assumed(rec, &task, n, &mut notes)) {
                Planned::Result(outcome) => {
                    d.complete(&task, outcome).await?;
                }
                Planned::Expire => {
                    d.expire(&task).await?;
                }
                Planned::Release => d.release(&task).await?,
            }
        }
    }
    d.finish(&waves, notes).await
}

/// How an attempt without a recording ends, noted in `notes`.
fn assumed(rec: &Recording, task: &str, n: u32, notes: &mut Vec<String>) -> Planned {
    let recorded = rec.tasks.get(task);
    let last_failure = recorded.and_then(|t| {
        let last = t.attempts.iter().filter(|a| a.outcome.is_some()).max_by_key(|a| a.attempt)?;
        (last.outcome.as_deref() == Some("failed")).then(|| last.error.clone())
    });
    match (recorded, last_failure) {
        (Some(_), Some(error)) => {
            notes.push(format!("{task}#{n}: not recorded; assumed to fail like its last recorded attempt"));
            Planned::Result(Outcome::Failed(error.unwrap_or_else(|| TaskError {
                message: "failed (assumed)".into(),
                kind: "unknown".into(),
                retryable: true,
                details: None,
            })))
        }
        (Some(t), None) => {
            notes.push(format!("{task}#{n}: not recorded; assumed to succeed with its recorded output"));
            Planned::Result(Outcome::Succeeded { output_json: t.output_json.clone().unwrap_or_else(|| "null".into()) })
        }
        (None, _) => {
            notes.push(format!("{task}#{n}: a task the recording does not have; assumed to succeed with null"));
            Planned::Result(Outcome::Succeeded { output_json: "null".into() })
        }
    }
}
