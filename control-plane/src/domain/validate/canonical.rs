//! The normalized form of a definition (every default written out), its canonical JSON and content hash.

use sha2::{Digest, Sha256};

use super::fields::Resolved;
use crate::domain::definition::{RetrySpec, RunSettings, WorkflowDefinition};

/// `def` with every default filled in: each task has a full retry spec and a
/// timeout, and the settings a full default retry spec and default timeout.
pub(super) fn normalize(def: &WorkflowDefinition, resolved: &Resolved) -> WorkflowDefinition {
    let tasks = def
        .tasks
        .iter()
        .zip(&resolved.tasks)
        .map(|(task, (retry, timeout))| {
            let mut task = task.clone();
            task.retry = Some(RetrySpec::from(retry));
            task.timeout = Some(*timeout);
            task
        })
        .collect();
    WorkflowDefinition {
        name: def.name.clone(),
        description: def.description.clone(),
        tasks,
        settings: RunSettings {
            default_retry: Some(RetrySpec::from(&resolved.settings_retry)),
            default_task_timeout: Some(resolved.settings_timeout),
            max_concurrent_runs: def.settings.max_concurrent_runs,
            concurrency_policy: def.settings.concurrency_policy,
            max_per_key: def.settings.max_per_key,
            retention: def.settings.retention,
        },
    }
}

/// Compact JSON with keys in declaration order (there are no maps, so the order
/// is fixed), durations as humantime strings, floats in shortest round-trip form.
pub(super) fn to_json(def: &WorkflowDefinition) -> Result<String, serde_json::Error> {
    serde_json::to_string(def)
}

/// Lowercase hex SHA-256 of `text`.
pub(super) fn hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(hash(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
