//! Validation of workflow definitions (every error at once, with a path to each) and of run inputs.

mod canonical;
mod fields;
mod graph;
mod path;
#[cfg(test)]
mod tests;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use self::path::{Path, Problems, Top};
use super::definition::WorkflowDefinition;
use super::limits;
use super::retry::RetryPolicy;

/// One problem with a definition or a request: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct ValidationError {
    /// Where in the input, like `tasks[3].depends_on[0]` or `input_json`.
    pub path: String,
    pub reason: String,
}

impl ValidationError {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ValidationError { path: path.into(), reason: reason.into() }
    }
}

/// A task with its retry policy and timeout decided.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedTask {
    pub name: String,
    pub task_type: String,
    pub depends_on: Vec<String>,
    pub retry: RetryPolicy,
    pub timeout: Duration,
}

/// A definition that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidWorkflow {
    /// The definition normalized: every default written out (each task has a
    /// full retry spec and a timeout; the settings a full default retry spec and
    /// a default task timeout).
    pub definition: WorkflowDefinition,
    /// The tasks in topological order: by level (longest path from a task
    /// without dependencies), then by definition order.
    pub tasks: Vec<ResolvedTask>,
    /// Compact JSON of `definition`, in a stable key order.
    pub canonical_json: String,
    /// Lowercase hex SHA-256 of `canonical_json`: equal for the same content,
    /// whether written in YAML or JSON, with defaults written out or omitted.
    pub content_hash: String,
}

/// Validates `def`, reporting every problem found, sorted in definition order.
pub fn validate(def: &WorkflowDefinition) -> Result<ValidWorkflow, Vec<ValidationError>> {
    let mut problems = Problems::default();
    let resolved = fields::check(def, &mut problems);
    let order = graph::check(def, &mut problems);
    let definition = canonical::normalize(def, &resolved);
    let size_at = Path::top(Top::Definition);
    let canonical_json = match canonical::to_json(&definition) {
        Ok(json) => json,
        Err(err) => {
            problems.push(&size_at, format!("cannot be written as JSON: {err}"));
            String::new()
        }
    };
    if canonical_json.len() > limits::MAX_DEFINITION_BYTES {
        let reason = format!(
            "too large: {} bytes as canonical JSON (limit {} bytes)",
            canonical_json.len(),
            limits::MAX_DEFINITION_BYTES
        );
        problems.push(&size_at, reason);
    }
    if !problems.is_empty() {
        return Err(problems.into_sorted());
    }
    let tasks = order
        .into_iter()
        .map(|i| {
            let task = &def.tasks[i];
            let (retry, timeout) = resolved.tasks[i].clone();
            ResolvedTask {
                name: task.name.clone(),
                task_type: task.task_type.clone(),
                depends_on: task.depends_on.clone(),
                retry,
                timeout,
            }
        })
        .collect();
    let content_hash = canonical::hash(&canonical_json);
    Ok(ValidWorkflow { definition, tasks, canonical_json, content_hash })
}

/// Parses an input kept in a database row (a schedule's): empty (or blank) means `{}`; otherwise
/// it must be JSON of at most [`limits::MAX_INPUT_BYTES`].
pub fn validate_input_json(input: &str) -> Result<serde_json::Value, ValidationError> {
    validate_input_json_within(input, limits::MAX_INPUT_BYTES)
}

/// Parses a run's input: empty (or blank) means `{}`; otherwise it must be JSON of at most `max`
/// bytes (checked before parsing).
pub fn validate_input_json_within(input: &str, max: usize) -> Result<serde_json::Value, ValidationError> {
    const PATH: &str = "input_json";
    if input.len() > max {
        let reason = format!("too large: {} bytes (limit {max} bytes)", input.len());
        return Err(ValidationError::new(PATH, reason));
    }
    if input.trim().is_empty() {
        return Ok(serde_json::Value::Object(serde_json::Map::new()));
    }
    serde_json::from_str(input).map_err(|err| ValidationError::new(PATH, format!("not valid JSON: {err}")))
}

/// Checks an idempotency key: empty means none; otherwise at most
/// [`limits::MAX_IDEMPOTENCY_KEY_LEN`] bytes with no control characters.
pub fn validate_idempotency_key(key: &str) -> Result<Option<&str>, ValidationError> {
    validate_key("idempotency_key", key, limits::MAX_IDEMPOTENCY_KEY_LEN)
}

/// Checks a trigger's concurrency key the same way (`None` when empty).
pub fn validate_concurrency_key(key: &str) -> Result<Option<&str>, ValidationError> {
    validate_key("concurrency_key", key, limits::MAX_CONCURRENCY_KEY_LEN)
}

fn validate_key<'a>(path: &str, key: &'a str, limit: usize) -> Result<Option<&'a str>, ValidationError> {
    if key.is_empty() {
        return Ok(None);
    }
    if key.len() > limit {
        let reason = format!("too long: {} bytes (limit {limit} bytes)", key.len());
        return Err(ValidationError::new(path, reason));
    }
    if let Some(bad) = key.chars().find(|c| c.is_control()) {
        return Err(ValidationError::new(path, format!("contains the control character {bad:?}")));
    }
    Ok(Some(key))
}
