//! Normalization, canonical JSON and the content hash.

use std::time::Duration;

use super::{valid, workflow, yaml};
use crate::domain::definition::{RetrySpec, WorkflowDefinition};
use crate::domain::limits;

const SHORT: &str = "\
name: etl
tasks:
  - name: extract
    task_type: http.get
  - name: load
    task_type: sql
    depends_on: [extract]
    retry: {max_attempts: 5}
";

const SPELLED_OUT: &str = r#"{
  "name": "etl",
  "description": "",
  "tasks": [
    {"name": "extract", "task_type": "http.get", "depends_on": [], "description": "",
     "timeout": "300s",
     "retry": {"max_attempts": 3, "initial_backoff": "1000ms", "multiplier": 2,
               "max_backoff": "5m", "jitter": true}},
    {"name": "load", "task_type": "sql", "depends_on": ["extract"],
     "retry": {"max_attempts": 5, "jitter": true}, "timeout": "5m"}
  ],
  "settings": {
    "default_retry": {"multiplier": 2.0, "max_attempts": 3},
    "default_task_timeout": "5m",
    "max_concurrent_runs": 0
  }
}"#;

fn hash_of(def: &WorkflowDefinition) -> String {
    valid(def).content_hash
}

#[test]
fn yaml_and_json_of_the_same_definition_hash_equal() {
    let from_yaml = yaml(SHORT);
    let json = serde_json::to_string_pretty(&from_yaml).unwrap();
    let from_json = WorkflowDefinition::from_json_str(&json).unwrap();
    assert_eq!(hash_of(&from_yaml), hash_of(&from_json));
    assert_eq!(valid(&from_yaml).canonical_json, valid(&from_json).canonical_json);
    assert_eq!(hash_of(&from_yaml).len(), 64);
}

#[test]
fn defaults_written_out_or_omitted_hash_equal() {
    let spelled = WorkflowDefinition::from_json_str(SPELLED_OUT).unwrap();
    assert_ne!(spelled, yaml(SHORT));
    assert_eq!(hash_of(&spelled), hash_of(&yaml(SHORT)));
}

#[test]
fn normalized_definition_has_every_default_and_round_trips() {
    let wf = valid(&yaml(SHORT));
    let full = |attempts| RetrySpec {
        max_attempts: Some(attempts),
        initial_backoff: Some(limits::DEFAULT_INITIAL_BACKOFF),
        multiplier: Some(limits::DEFAULT_MULTIPLIER),
        max_backoff: Some(limits::DEFAULT_MAX_BACKOFF),
        jitter: Some(limits::DEFAULT_JITTER),
    };
    let def = &wf.definition;
    assert_eq!(def.settings.default_retry, Some(full(3)));
    assert_eq!(def.settings.default_task_timeout, Some(limits::DEFAULT_TASK_TIMEOUT));
    assert_eq!(def.tasks[0].retry, Some(full(3)));
    assert_eq!(def.tasks[1].retry, Some(full(5)));
    assert!(def.tasks.iter().all(|t| t.timeout == Some(limits::DEFAULT_TASK_TIMEOUT)));
    assert!(wf.canonical_json.contains(r#""initial_backoff":"1s","multiplier":2.0,"max_backoff":"5m""#));
    // Storing the canonical JSON and validating it again changes nothing.
    let again = valid(&WorkflowDefinition::from_json_str(&wf.canonical_json).unwrap());
    assert_eq!((again.canonical_json, again.content_hash), (wf.canonical_json.clone(), wf.content_hash.clone()));
    assert_eq!(again.definition, wf.definition);
}

#[test]
fn any_change_changes_the_hash() {
    let base = yaml(SHORT);
    let base_hash = hash_of(&base);
    type Edit = fn(&mut WorkflowDefinition);
    let edits: &[(&str, Edit)] = &[
        ("name", |d| d.name = "etl2".into()),
        ("description", |d| d.description = "x".into()),
        ("task name", |d| {
            d.tasks[1].name = "store".into();
        }),
        ("task_type", |d| d.tasks[0].task_type = "http.post".into()),
        ("depends_on", |d| d.tasks[1].depends_on.clear()),
        ("task description", |d| d.tasks[0].description = "x".into()),
        ("timeout", |d| d.tasks[0].timeout = Some(Duration::from_secs(301))),
        ("max_attempts", |d| d.tasks[1].retry.as_mut().unwrap().max_attempts = Some(6)),
        ("jitter", |d| d.tasks[1].retry.as_mut().unwrap().jitter = Some(false)),
        ("multiplier", |d| d.tasks[1].retry.as_mut().unwrap().multiplier = Some(2.000_001)),
        ("initial_backoff", |d| d.tasks[1].retry.as_mut().unwrap().initial_backoff = Some(Duration::from_millis(1001))),
        ("max_backoff", |d| d.tasks[1].retry.as_mut().unwrap().max_backoff = Some(Duration::from_secs(301))),
        ("default_retry", |d| {
            d.settings.default_retry = Some(RetrySpec { jitter: Some(false), ..RetrySpec::default() })
        }),
        ("default_task_timeout", |d| d.settings.default_task_timeout = Some(Duration::from_secs(60))),
        ("max_concurrent_runs", |d| d.settings.max_concurrent_runs = 2),
        ("task order", |d| d.tasks.swap(0, 1)),
        ("extra task", |d| d.tasks.push(super::task("extra", &[]))),
    ];
    let mut seen = std::collections::HashSet::from([base_hash.clone()]);
    for (what, edit) in edits {
        let mut def = base.clone();
        edit(&mut def);
        let hash = hash_of(&def);
        assert!(seen.insert(hash), "editing {what} left the hash equal to another's");
    }
}

#[test]
fn equal_durations_spelled_differently_hash_equal() {
    let a = yaml("name: w\ntasks: [{name: a, task_type: t, timeout: 90s}]\n");
    let b = yaml("name: w\ntasks: [{name: a, task_type: t, timeout: 1m 30s}]\n");
    let c = yaml("name: w\ntasks: [{name: a, task_type: t, timeout: 90000ms}]\n");
    assert_eq!(hash_of(&a), hash_of(&b));
    assert_eq!(hash_of(&a), hash_of(&c));
    assert_ne!(hash_of(&a), hash_of(&workflow(&[("a", &[])])));
}
