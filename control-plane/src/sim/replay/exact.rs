//! Exact replay: the recording's own inputs, in their recorded order, and where the engine's events part from the recorded ones.

use super::{Driver, Planned, RecordedEvent, Recording, Replay, recorded_outcome};
use crate::sim::SimError;
use crate::store::dead_letters::DeadLetterFilter;
use std::collections::BTreeMap;

/// The first place where the replayed events differ from the recorded ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// Position among the compared events (0-based).
    pub index: usize,
    pub recorded: Option<RecordedEvent>,
    pub replayed: Option<RecordedEvent>,
}

/// An exact replay and how it compares with the recording.
#[derive(Debug, Clone)]
pub struct ExactReplay {
    pub replay: Replay,
    /// Events compared (those the engine's decisions make).
    pub compared: usize,
    /// None when every compared event is the same kind, task and attempt, in the same order.
    pub divergence: Option<Divergence>,
}

/// Feeds the recorded inputs (leases taken, results reported, leases expired, the run
/// cancelled, dead letters redriven) to a fresh engine in their recorded order.
pub async fn replay_exact(rec: &Recording) -> Result<ExactReplay, SimError> {
    let mut d = Driver::start(&rec.definition, rec).await?;
    let mut notes = Vec::new();
    for ev in &rec.events {
        let Some(task) = ev.task.as_deref() else {
            if ev.kind == "run_cancelled" {
                d.engine.cancel_run(&d.tenant, d.run_id, "cancelled in the recording").await?;
                d.held.clear();
            }
            continue;
        };
        let n = ev.attempt.unwrap_or(0);
        match ev.kind.as_str() {
            "task_leased" => {
                // An attempt handed back unused (a draining worker) has no event of its own.
                if let Some((key, _)) = d.held.get(task)
                    && recorded_outcome(rec, task, key.attempt) == Some(Planned::Release)
                {
                    d.release(task).await?;
                }
                let got = d.lease(&[task.to_owned()]).await?;
                if got != [(task.to_owned(), n)] {
                    notes.push(format!("the recorded lease of {task}#{n} was not granted (got {got:?})"));
                }
            }
            "task_succeeded" | "task_failed" | "task_retry_scheduled" if ev.attempt.is_some() => {
                match recorded_outcome(rec, task, n) {
                    Some(Planned::Result(outcome)) => {
                        if !d.complete(task, outcome).await? {
                            notes.push(format!("the recorded result of {task}#{n} was turned away"));
                        }
                    }
                    Some(Planned::Expire) => {
                        if !d.expire(task).await? {
                            notes.push(format!("the recorded expiry of {task}#{n} recovered nothing"));
                        }
                    }
                    Some(Planned::Release) => d.release(task).await?,
                    None => notes.push(format!("no recorded outcome for {task}#{n}")),
                }
            }
            "task_redriven" => {
                let filter = DeadLetterFilter {
                    run_id: Some(d.run_id),
                    task_name: Some(task.to_owned()),
                    ..DeadLetterFilter::default()
                };
                d.engine.redrive(&d.tenant, &[], &filter).await?;
            }
            _ => {}
        }
    }
    let replay = d.finish(&BTreeMap::new(), notes).await?;
    let recorded: Vec<&RecordedEvent> = rec.events.iter().filter(|e| e.compared()).collect();
    let replayed: Vec<&RecordedEvent> = replay.trace.iter().filter(|e| e.compared()).collect();
    let same = |a: &RecordedEvent, b: &RecordedEvent| a.kind == b.kind && a.task == b.task && a.attempt == b.attempt;
    let divergence = (0..recorded.len().max(replayed.len()))
        .find(|&i| match (recorded.get(i), replayed.get(i)) {
            (Some(a), Some(b)) => !same(a, b),
            _ => true,
        })
        .map(|index| Divergence {
            index,
            recorded: recorded.get(index).map(|e| (*e).clone()),
            replayed: replayed.get(index).map(|e| (*e).clone()),
        });
    Ok(ExactReplay { compared: recorded.len(), replay, divergence })
}
