//! The workflow as authored in YAML or JSON files, and parsing it with line/column errors.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::flow::ConcurrencyPolicy;
use super::limits::MAX_DEFINITION_TEXT_BYTES;

/// A workflow definition as written by its author. Unknown fields are errors, so
/// typos do not pass silently; durations are humantime strings ("500ms", "5m").
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowDefinition {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tasks: Vec<TaskDefinition>,
    #[serde(default)]
    pub settings: RunSettings,
}

/// One task of a workflow definition.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDefinition {
    pub name: String,
    /// What workers advertise; a task is leased only to workers of this type.
    pub task_type: String,
    /// Names of the tasks that must succeed before this one runs.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Overrides `settings.default_retry` field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    /// Execution timeout of one attempt; `settings.default_task_timeout` if absent.
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub description: String,
}

/// A retry policy as authored: every field optional, missing ones inherited.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Attempts in total, the first one included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub initial_backoff: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiplier: Option<f64>,
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub max_backoff: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<bool>,
}

/// Workflow-wide settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    /// Retry policy of tasks that do not set their own (fields fall back to the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_retry: Option<RetrySpec>,
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub default_task_timeout: Option<Duration>,
    /// Runs of this workflow allowed at once; 0 means no limit.
    #[serde(default)]
    pub max_concurrent_runs: u32,
    /// The fate of a run that does not fit under `max_concurrent_runs` or `max_per_key`.
    #[serde(default, skip_serializing_if = "ConcurrencyPolicy::is_default")]
    pub concurrency_policy: ConcurrencyPolicy,
    /// Running runs allowed at once per concurrency key (given at trigger); 0 means no limit.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_per_key: u32,
    /// Finished runs older than this are deleted; the server's default if absent.
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub retention: Option<Duration>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl RunSettings {
    /// Whether runs of this workflow pass through admission (a concurrency limit is set).
    pub fn limits_concurrency(&self) -> bool {
        self.max_concurrent_runs > 0 || self.max_per_key > 0
    }
}

/// The text format a definition was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Yaml,
    Json,
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceFormat::Yaml => "YAML",
            SourceFormat::Json => "JSON",
        })
    }
}

/// A definition that could not be parsed. `message` is the parser's own, which
/// names the line and column; they are also given as fields (1-based) when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {format} workflow definition: {message}")]
pub struct DefinitionParseError {
    pub format: SourceFormat,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl From<serde_norway::Error> for DefinitionParseError {
    fn from(err: serde_norway::Error) -> Self {
        let location = err.location();
        DefinitionParseError {
            format: SourceFormat::Yaml,
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            message: err.to_string(),
        }
    }
}

impl From<serde_json::Error> for DefinitionParseError {
    fn from(err: serde_json::Error) -> Self {
        let known = err.line() > 0;
        DefinitionParseError {
            format: SourceFormat::Json,
            line: known.then(|| err.line()),
            column: known.then(|| err.column()),
            message: err.to_string(),
        }
    }
}

impl DefinitionParseError {
    /// Refuses text over [`MAX_DEFINITION_TEXT_BYTES`] before any parsing.
    fn check_size(format: SourceFormat, text: &str) -> Result<(), Self> {
        if text.len() <= MAX_DEFINITION_TEXT_BYTES {
            return Ok(());
        }
        let message = format!("too large: {} bytes (limit {MAX_DEFINITION_TEXT_BYTES} bytes)", text.len());
        Err(DefinitionParseError { format, line: None, column: None, message })
    }
}

impl WorkflowDefinition {
    /// Parses a YAML definition (JSON is accepted too: YAML is a superset of it). Text over
    /// [`MAX_DEFINITION_TEXT_BYTES`] is refused unparsed; nesting deeper than the parser's
    /// recursion limit (128) is an error, not a stack overflow.
    pub fn from_yaml_str(text: &str) -> Result<Self, DefinitionParseError> {
        DefinitionParseError::check_size(SourceFormat::Yaml, text)?;
        Ok(serde_norway::from_str(text)?)
    }

    /// Parses a JSON definition, with the same bounds as [`Self::from_yaml_str`].
    pub fn from_json_str(text: &str) -> Result<Self, DefinitionParseError> {
        DefinitionParseError::check_size(SourceFormat::Json, text)?;
        Ok(serde_json::from_str(text)?)
    }

    /// Parses a file's contents, choosing the format by `path_hint`'s extension:
    /// `.json` is JSON, anything else YAML.
    pub fn from_file_contents(path_hint: &str, contents: &str) -> Result<Self, DefinitionParseError> {
        let is_json = std::path::Path::new(path_hint).extension().is_some_and(|ext| ext.eq_ignore_ascii_case("json"));
        if is_json { Self::from_json_str(contents) } else { Self::from_yaml_str(contents) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
name: etl
description: nightly load
tasks:
  - name: extract
    task_type: http.get
    timeout: 30s
    retry:
      max_attempts: 5
      initial_backoff: 500ms
      jitter: false
  - name: load
    task_type: sql
    depends_on: [extract]
settings:
  default_task_timeout: 2m
  max_concurrent_runs: 4
";

    #[test]
    fn parses_yaml_with_durations_and_defaults() {
        let def = WorkflowDefinition::from_yaml_str(YAML).unwrap();
        assert_eq!(def.name, "etl");
        assert_eq!(def.tasks.len(), 2);
        let extract = &def.tasks[0];
        assert_eq!(extract.timeout, Some(Duration::from_secs(30)));
        let retry = extract.retry.as_ref().unwrap();
        assert_eq!(retry.max_attempts, Some(5));
        assert_eq!(retry.initial_backoff, Some(Duration::from_millis(500)));
        assert_eq!((retry.multiplier, retry.max_backoff, retry.jitter), (None, None, Some(false)));
        let load = &def.tasks[1];
        assert_eq!(load.depends_on, ["extract"]);
        assert_eq!((load.retry.as_ref(), load.timeout, load.description.as_str()), (None, None, ""));
        assert_eq!(def.settings.default_task_timeout, Some(Duration::from_secs(120)));
        assert_eq!(def.settings.max_concurrent_runs, 4);
        assert_eq!(def.settings.default_retry, None);
    }

    #[test]
    fn json_and_yaml_parse_to_the_same_value() {
        let json = serde_json::to_string(&WorkflowDefinition::from_yaml_str(YAML).unwrap()).unwrap();
        let from_json = WorkflowDefinition::from_json_str(&json).unwrap();
        assert_eq!(from_json, WorkflowDefinition::from_yaml_str(YAML).unwrap());
        assert_eq!(WorkflowDefinition::from_yaml_str(&json).unwrap(), from_json);
    }

    #[test]
    fn unknown_field_in_yaml_fails_with_location() {
        let text = "name: etl\ntasks:\n  - name: a\n    task_type: t\n    depends_onn: [b]\n";
        let err = WorkflowDefinition::from_yaml_str(text).unwrap_err();
        assert_eq!(err.format, SourceFormat::Yaml);
        assert_eq!(err.line, Some(5), "{err}");
        assert!(err.column.is_some());
        let shown = err.to_string();
        assert!(shown.contains("depends_onn"), "{shown}");
        assert!(shown.contains("line 5"), "{shown}");
    }

    #[test]
    fn unknown_field_in_json_fails_with_location() {
        let text = "{\n  \"name\": \"etl\",\n  \"tasks\": [],\n  \"setings\": {}\n}";
        let err = WorkflowDefinition::from_json_str(text).unwrap_err();
        assert_eq!((err.format, err.line), (SourceFormat::Json, Some(4)));
        assert!(err.to_string().contains("setings") && err.to_string().contains("line 4"), "{err}");
    }

    #[test]
    fn bad_duration_and_missing_fields_are_errors() {
        let bad = [
            "name: x\ntasks:\n  - {name: a, task_type: t, timeout: soon}\n",
            "name: x\ntasks:\n  - {name: a, task_type: t, timeout: 30}\n",
            "name: x\ntasks:\n  - {name: a}\n",
            "tasks: []\n",
            "",
            "name: x\nsettings: {default_retry: {max_attempts: -1}}\n",
        ];
        for text in bad {
            assert!(WorkflowDefinition::from_yaml_str(text).is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn oversized_text_is_refused_before_parsing() {
        let text = format!("name: x\ndescription: {}\n", "y".repeat(MAX_DEFINITION_TEXT_BYTES));
        let err = WorkflowDefinition::from_yaml_str(&text).unwrap_err();
        assert_eq!((err.format, err.line, err.column), (SourceFormat::Yaml, None, None));
        let want = format!("too large: {} bytes (limit {MAX_DEFINITION_TEXT_BYTES} bytes)", text.len());
        assert_eq!(err.message, want);
        let err = WorkflowDefinition::from_json_str(&" ".repeat(MAX_DEFINITION_TEXT_BYTES + 1)).unwrap_err();
        assert_eq!(err.to_string(), "invalid JSON workflow definition: too large: 4194305 bytes (limit 4194304 bytes)");
    }

    #[test]
    fn file_extension_picks_the_parser() {
        let json = r#"{"name": "x", "tasks": [{"name": "a", "task_type": "t"}]}"#;
        for path in ["wf.json", "dir/WF.JSON"] {
            let def = WorkflowDefinition::from_file_contents(path, json).unwrap();
            assert_eq!(def.tasks[0].name, "a");
            let err = WorkflowDefinition::from_file_contents(path, "name: x").unwrap_err();
            assert_eq!(err.format, SourceFormat::Json);
        }
        for path in ["wf.yaml", "wf.yml", "wf", "json"] {
            let err = WorkflowDefinition::from_file_contents(path, "name: [").unwrap_err();
            assert_eq!(err.format, SourceFormat::Yaml);
            assert!(WorkflowDefinition::from_file_contents(path, json).is_ok());
        }
    }

    #[test]
    fn serializing_omits_absent_options_and_round_trips() {
        let def = WorkflowDefinition::from_yaml_str(YAML).unwrap();
        let json = serde_json::to_string(&def).unwrap();
        assert!(!json.contains("null"), "{json}");
        assert!(json.contains(r#""timeout":"30s""#), "{json}");
        let yaml = serde_norway::to_string(&def).unwrap();
        assert_eq!(WorkflowDefinition::from_yaml_str(&yaml).unwrap(), def);
    }
}
