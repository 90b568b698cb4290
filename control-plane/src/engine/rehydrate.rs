//! A leased task's input with its large payloads read back and verified, and what happens to a task whose input cannot be built.
//!
//! The control plane rehydrates: workers of every language receive plain JSON and never talk to
//! the object store. A reference whose object is missing or does not match its size and SHA-256
//! fails the task for good (`payload_missing`, `payload_corrupt`: corrupt data never reaches a
//! worker, and retrying cannot repair it); an input larger than a worker stream message can carry
//! fails it too (`input_too_large`). An object store that does not answer hands the lease back
//! (the attempt does not count) and the reconciler offers the task again after its grace period.

use super::Engine;
use super::complete::{Completion, Outcome};
use super::dispatch::task_input;
use super::payloads::Fetched;
use crate::domain::limits::MAX_TASK_INPUT_BYTES;
use crate::domain::payload_ref::{PayloadRef, Stored};
use crate::domain::records::{Run, TaskError, Tenant};
use crate::objects::ObjectError;
use crate::store::leases::LeaseKey;
use crate::store::{StoreError, corrupt};
use std::collections::HashMap;
use uuid::Uuid;

/// Why a leased task's input cannot be sent.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Unusable {
    /// The task fails, not retried: this error says why.
    Fails(TaskError),
    /// The object store did not answer: the lease goes back.
    Unavailable(String),
}

/// Dependency outputs as stored, by (run, task name).
pub(super) type Outputs = HashMap<(Uuid, String), Stored>;

/// The stored outputs, decoded.
pub(super) fn decode_outputs(raw: HashMap<(Uuid, String), String>) -> Result<Outputs, StoreError> {
    raw.into_iter().map(|(k, v)| Ok((k, Stored::decode(v).map_err(corrupt)?))).collect()
}

/// Every reference that inputs over `runs` and `outputs` need.
pub(super) fn references<'a>(runs: impl Iterator<Item = &'a Run>, outputs: &Outputs) -> Vec<PayloadRef> {
    let inputs = runs.filter_map(|r| r.input_ref.clone());
    let outs = outputs.values().filter_map(|s| match s {
        Stored::Object(r) => Some(r.clone()),
        Stored::Inline(_) | Stored::Assembled { .. } => None,
    });
    inputs.chain(outs).collect()
}

fn fails(kind: &str, message: String) -> Unusable {
    Unusable::Fails(TaskError { message, kind: kind.into(), retryable: false, details: None })
}

/// The text of `what` (kept at `r`) from `fetched`, or why it cannot be had.
fn read<'a>(fetched: &'a Fetched, r: &PayloadRef, task: &str, what: &str) -> Result<&'a str, Unusable> {
    let Some(got) = fetched.get(&r.key) else {
        return Err(Unusable::Unavailable(format!("{what} ({}) was not read", r.key)));
    };
    got.as_deref().map_err(|e| {
        let why = format!("the input of task {task} cannot be built: {what}: {e}");
        match e {
            ObjectError::Missing { .. } => fails("payload_missing", why),
            ObjectError::SizeMismatch { .. } | ObjectError::ChecksumMismatch { .. } => fails("payload_corrupt", why),
            ObjectError::Unavailable { .. } | ObjectError::Config(_) => Unusable::Unavailable(why),
        }
    })
}

/// The input task `task` of `run` receives, with every reference replaced by its document.
pub(super) fn input_text(
    run: &Run,
    task: &str,
    depends_on: &[String],
    outputs: &Outputs,
    fetched: &Fetched,
) -> Result<String, Unusable> {
    let run_input = match &run.input_ref {
        Some(r) => read(fetched, r, task, "the run input")?,
        None => run.input.as_str(),
    };
    let mut deps = Vec::with_capacity(depends_on.len());
    for d in depends_on {
        let text = match outputs.get(&(run.id, d.clone())) {
            None => None,
            Some(Stored::Inline(o)) => Some(o.as_str()),
            Some(Stored::Object(r)) => Some(read(fetched, r, task, &format!("the output of dependency {d}"))?),
            Some(Stored::Assembled { .. }) => {
                return Err(fails("payload_corrupt", format!("the output of dependency {d} is not a document")));
            }
        };
        deps.push((d.as_str(), text));
    }
    let text = task_input(run_input, deps).to_string();
    if text.len() > MAX_TASK_INPUT_BYTES {
        return Err(fails(
            "input_too_large",
            format!(
                "the input of task {task} (the run input and its dependencies' outputs) is {} bytes; \
                 a task's input is at most {MAX_TASK_INPUT_BYTES} bytes (a worker stream message)",
                text.len()
            ),
        ));
    }
    Ok(text)
}

impl Engine {
    /// Fails (for good) or hands back the leases of tasks whose input could not be built.
    pub(super) async fn set_aside(&self, tenant: &Tenant, unusable: Vec<(LeaseKey, Unusable)>) {
        let mut failed = Vec::new();
        let mut back = Vec::new();
        for (key, why) in unusable {
            match why {
                Unusable::Fails(e) => {
                    tracing::error!(task = %key.task_id, kind = %e.kind, error = %e.message, "task input cannot be built");
                    failed.push(Completion { key, outcome: Outcome::Failed(e) });
                }
                Unusable::Unavailable(why) => {
                    tracing::warn!(task = %key.task_id, error = %why, "object store unavailable; lease handed back");
                    back.push(key);
                }
            }
        }
        if !failed.is_empty() {
            for r in self.complete_many(tenant, failed).await {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "cannot fail a task whose input cannot be built; its lease expires");
                }
            }
        }
        if let Err(e) = self.release(tenant, &back).await {
            tracing::warn!(error = %e, "cannot hand back leases; they expire");
        }
    }
}
