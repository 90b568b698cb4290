//! Tests of `validate`: shared builders, then one submodule per concern.

mod fields;
mod graph;
mod hash;
mod input;

use crate::domain::definition::{TaskDefinition, WorkflowDefinition};
use crate::domain::validate::{ValidWorkflow, validate};

/// A workflow "wf" with tasks of type "work", given as `(name, depends_on)`.
fn workflow(tasks: &[(&str, &[&str])]) -> WorkflowDefinition {
    WorkflowDefinition {
        name: "wf".into(),
        tasks: tasks.iter().map(|(name, deps)| task(name, deps)).collect(),
        ..WorkflowDefinition::default()
    }
}

fn task(name: &str, deps: &[&str]) -> TaskDefinition {
    TaskDefinition {
        name: name.into(),
        task_type: "work".into(),
        depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
        ..TaskDefinition::default()
    }
}

/// A chain `t0 <- t1 <- ... <- t{n-1}` (each task depends on the one before).
fn chain(n: usize) -> WorkflowDefinition {
    let names: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    let mut def = workflow(&[]);
    for (i, name) in names.iter().enumerate() {
        let deps: Vec<&str> = names[..i].last().map(String::as_str).into_iter().collect();
        def.tasks.push(task(name, &deps));
    }
    def
}

/// The errors of an invalid definition, as "path: reason".
fn errors(def: &WorkflowDefinition) -> Vec<String> {
    match validate(def) {
        Ok(valid) => panic!("expected errors, got a valid workflow: {:?}", valid.canonical_json),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn valid(def: &WorkflowDefinition) -> ValidWorkflow {
    match validate(def) {
        Ok(valid) => valid,
        Err(errors) => panic!("expected a valid workflow, got {errors:#?}"),
    }
}

fn yaml(text: &str) -> WorkflowDefinition {
    match WorkflowDefinition::from_yaml_str(text) {
        Ok(def) => def,
        Err(err) => panic!("{err}"),
    }
}
