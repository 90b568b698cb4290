//! Large payloads: run inputs and task outputs over the inline limit go to object storage before the transaction that references them; workers and readers get them back verified.

use super::complete::{Completion, Outcome};
use super::{Engine, EngineError};
use crate::domain::payload_ref::{PayloadLimits, PayloadRef, Stored, assemble};
use crate::domain::records::{Run, RunDetail, Task, TaskError, Tenant};
use crate::objects::{ObjectError, ObjectRef, PayloadStore};
use crate::store::corrupt;
use futures::{StreamExt, stream};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Objects read or written at once by one call.
const CONCURRENT_OBJECTS: usize = 8;

fn to_ref(o: ObjectRef) -> PayloadRef {
    PayloadRef { key: o.key, size: o.size, sha256: o.sha256 }
}

fn to_object(r: &PayloadRef) -> ObjectRef {
    ObjectRef { key: r.key.clone(), size: r.size, sha256: r.sha256.clone() }
}

/// The documents of a set of references, read once each: by key, the text or why it could not be read.
pub(super) type Fetched = HashMap<String, Result<String, ObjectError>>;

impl Engine {
    /// This engine, keeping large payloads in `store` (`Engine::new` keeps them in memory).
    #[must_use]
    pub fn with_payloads(mut self, store: PayloadStore) -> Self {
        self.payloads = store;
        self
    }

    /// Where large payloads are kept.
    pub fn payloads(&self) -> &PayloadStore {
        &self.payloads
    }

    pub(super) fn payload_limits(&self) -> PayloadLimits {
        self.settings.payloads
    }

    /// Writes `doc` of run `run_id` to object storage when it is over the inline limit; returns
    /// the reference, or `None` for a document that stays in its column.
    pub(super) async fn offload(
        &self,
        tenant: &Tenant,
        run_id: Uuid,
        doc: &str,
    ) -> Result<Option<PayloadRef>, ObjectError> {
        if self.payload_limits().keeps_inline(doc.len()) {
            return Ok(None);
        }
        let body = bytes::Bytes::copy_from_slice(doc.as_bytes());
        Ok(Some(to_ref(self.payloads.put_run_payload(tenant.as_str(), run_id, body).await?)))
    }

    /// Reads every object of `refs` (each once, several at a time), verified.
    pub(super) async fn fetch_all(&self, refs: impl IntoIterator<Item = PayloadRef>) -> Fetched {
        let mut seen = HashSet::new();
        let unique: Vec<PayloadRef> = refs.into_iter().filter(|r| seen.insert(r.key.clone())).collect();
        stream::iter(unique)
            .map(|r| async move {
                let text = self.payloads.get_verified(&to_object(&r)).await.and_then(|bytes| {
                    // What was written was text: bytes that verify are that text.
                    String::from_utf8(bytes.to_vec()).map_err(|_| ObjectError::ChecksumMismatch {
                        key: r.key.clone(),
                        expected: r.sha256.clone(),
                        actual: "(not UTF-8)".into(),
                    })
                });
                (r.key, text)
            })
            .buffer_unordered(CONCURRENT_OBJECTS)
            .collect()
            .await
    }

    /// The document a reference names, read and verified.
    async fn fetch(&self, r: &PayloadRef) -> Result<String, EngineError> {
        let mut got = self.fetch_all([r.clone()]).await;
        got.remove(&r.key).unwrap_or_else(|| Err(ObjectError::Missing { key: r.key.clone() })).map_err(Into::into)
    }

    /// A run's whole input, read from object storage when it is kept there.
    pub async fn run_input_text(&self, run: &Run) -> Result<String, EngineError> {
        match &run.input_ref {
            Some(r) => self.fetch(r).await,
            None => Ok(run.input.clone()),
        }
    }

    /// A task's whole output (None before it succeeded), read from object storage when kept there.
    pub async fn task_output_text(&self, task: &Task) -> Result<Option<String>, EngineError> {
        match (&task.output, &task.output_ref) {
            (_, Some(r)) => self.fetch(r).await.map(Some),
            (output, None) => Ok(output.clone()),
        }
    }

    /// A run's whole output (None before it succeeded): `{"task": output}` of the tasks nothing
    /// depends on, assembled from their payloads when the run keeps no copy of its own.
    pub async fn run_output_text(&self, detail: &RunDetail) -> Result<Option<String>, EngineError> {
        if detail.run.output_ref.is_none() {
            return Ok(detail.run.output.clone());
        }
        let depended: HashSet<&str> =
            detail.tasks.iter().flat_map(|t| t.depends_on.iter().map(String::as_str)).collect();
        let mut sinks: Vec<&Task> = detail.tasks.iter().filter(|t| !depended.contains(t.name.as_str())).collect();
        sinks.sort_by(|a, b| a.name.cmp(&b.name));
        let fetched = self.fetch_all(sinks.iter().filter_map(|t| t.output_ref.clone())).await;
        let mut parts = Vec::with_capacity(sinks.len());
        for t in &sinks {
            let text = match (&t.output_ref, &t.output) {
                (Some(r), _) => {
                    fetched.get(&r.key).cloned().unwrap_or_else(|| Err(ObjectError::Missing { key: r.key.clone() }))?
                }
                (None, Some(o)) => o.clone(),
                (None, None) => {
                    return Err(
                        corrupt(format!("run {} succeeded without an output of {}", detail.run.id, t.name)).into()
                    );
                }
            };
            parts.push((t.name.as_str(), text));
        }
        Ok(Some(assemble(parts.iter().map(|(n, p)| (*n, p.as_str())))))
    }

    /// The input task `at` of `detail` receives (as a worker gets it): the run input and its
    /// dependencies' outputs, read from object storage where they are kept.
    pub async fn task_input_text(&self, detail: &RunDetail, at: usize) -> Result<String, EngineError> {
        let task = detail.tasks.get(at).ok_or_else(|| corrupt(format!("run {} has no task {at}", detail.run.id)))?;
        let deps: Vec<&Task> =
            task.depends_on.iter().filter_map(|d| detail.tasks.iter().find(|t| &t.name == d)).collect();
        let refs = detail.run.input_ref.iter().cloned().chain(deps.iter().filter_map(|t| t.output_ref.clone()));
        let fetched = self.fetch_all(refs).await;
        let text = |r: &PayloadRef| -> Result<String, EngineError> {
            Ok(fetched.get(&r.key).cloned().unwrap_or_else(|| Err(ObjectError::Missing { key: r.key.clone() }))?)
        };
        let input = match &detail.run.input_ref {
            Some(r) => text(r)?,
            None => detail.run.input.clone(),
        };
        let mut outputs = Vec::with_capacity(task.depends_on.len());
        for d in &task.depends_on {
            let t = deps.iter().find(|t| &t.name == d);
            let out = match t.map(|t| (&t.output, &t.output_ref)) {
                Some((_, Some(r))) => Some(text(r)?),
                Some((o, None)) => o.clone(),
                None => None,
            };
            outputs.push((d.as_str(), out));
        }
        Ok(super::dispatch::task_input(&input, outputs.iter().map(|(d, o)| (*d, o.as_deref()))).to_string())
    }

    /// Deletes the objects of these runs after their rows are gone, several at a time. Failures
    /// are kept and tried again on the next call (until the process ends: then those objects
    /// stay, orphaned under their deleted run's prefix). Returns how many objects went.
    pub(super) async fn delete_run_objects(&self, runs: Vec<(String, Uuid)>) -> u64 {
        let mut todo = runs;
        todo.append(&mut self.undeleted.lock().unwrap_or_else(|p| p.into_inner()));
        let results: Vec<((String, Uuid), Result<usize, ObjectError>)> = stream::iter(todo)
            .map(|(tenant, run)| async move {
                let r = self.payloads.delete_run(&tenant, run).await;
                ((tenant, run), r)
            })
            .buffer_unordered(CONCURRENT_OBJECTS)
            .collect()
            .await;
        let mut deleted = 0;
        let mut failed = Vec::new();
        for (run, r) in results {
            match r {
                Ok(n) => deleted += n as u64,
                Err(e) => {
                    tracing::warn!(tenant = %run.0, run = %run.1, error = %e, "cannot delete a deleted run's objects; trying again on the next pass");
                    failed.push(run);
                }
            }
        }
        self.undeleted.lock().unwrap_or_else(|p| p.into_inner()).extend(failed);
        deleted
    }

    /// Deletes, in the background, objects written for runs whose rows were never committed.
    pub(super) fn forget_objects(&self, tenant: &Tenant, runs: Vec<Uuid>) {
        if runs.is_empty() {
            return;
        }
        let engine = self.clone();
        let tenant = tenant.as_str().to_owned();
        tokio::spawn(async move {
            engine.delete_run_objects(runs.into_iter().map(|r| (tenant.clone(), r)).collect()).await;
        });
    }
}

impl Engine {
    /// `items` with each accepted-size output over the inline limit written to object storage and
    /// replaced by its reference. An output that cannot be written fails its attempt (retryable:
    /// the object store may answer next time).
    pub(super) async fn offload_outputs(
        &self,
        tenant: &Tenant,
        items: Vec<Completion>,
    ) -> Result<Vec<Completion>, EngineError> {
        let limits = self.payload_limits();
        let large = |c: &Completion| matches!(&c.outcome, Outcome::Succeeded { output_json } if !limits.keeps_inline(output_json.len()));
        if !items.iter().any(large) {
            return Ok(items);
        }
        let ids: Vec<Uuid> = items.iter().filter(|c| large(c)).map(|c| c.key.task_id).collect();
        let runs = crate::store::tasks::runs_of(self.store.conn(), tenant, &ids).await?;
        let mut out = Vec::with_capacity(items.len());
        for c in items {
            let (Outcome::Succeeded { output_json }, Some(&run_id)) = (&c.outcome, runs.get(&c.key.task_id)) else {
                // Small, a failure, or no such task (its result is turned away unwritten).
                out.push(c);
                continue;
            };
            let outcome = match self.offload(tenant, run_id, output_json).await {
                Ok(Some(r)) => Outcome::Succeeded { output_json: Stored::Object(r).encode() },
                Ok(None) => c.outcome.clone(),
                Err(e) => {
                    tracing::warn!(task = %c.key.task_id, error = %e, "cannot keep a large output");
                    Outcome::Failed(TaskError {
                        message: format!(
                            "the control plane could not keep the {}-byte output in object storage: {e}",
                            output_json.len()
                        ),
                        kind: "output_not_stored".into(),
                        retryable: true,
                        details: None,
                    })
                }
            };
            out.push(Completion { key: c.key, outcome });
        }
        Ok(out)
    }
}

/// The column text of a document that is inline or kept at `r`.
pub(super) fn column(doc: &str, r: Option<&PayloadRef>) -> String {
    match r {
        Some(r) => Stored::Object(r.clone()).encode(),
        None => doc.to_owned(),
    }
}
