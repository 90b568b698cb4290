//! Field validation: names, counts, descriptions, retry bounds, timeouts, size; all errors at once.

use std::time::Duration;

use super::{errors, task, valid, workflow, yaml};
use crate::domain::limits;
use crate::domain::retry::RetryPolicy;

#[test]
fn empty_dag() {
    assert_eq!(errors(&workflow(&[])), ["tasks: a workflow needs at least one task"]);
}

#[test]
fn too_many_tasks_says_the_limit() {
    let mut def = workflow(&[]);
    def.tasks = (0..=limits::MAX_TASKS).map(|i| task(&format!("t{i}"), &[])).collect();
    assert_eq!(errors(&def), ["tasks: too many tasks: 1001 (limit 1000)"]);
    def.tasks.pop();
    valid(&def);
}

#[test]
fn duplicate_names_point_at_the_first() {
    let def = workflow(&[("a", &[]), ("b", &[]), ("a", &[]), ("b", &[]), ("a", &[])]);
    assert_eq!(
        errors(&def),
        [
            "tasks[2].name: duplicate task name \"a\" (also tasks[0])",
            "tasks[3].name: duplicate task name \"b\" (also tasks[1])",
            "tasks[4].name: duplicate task name \"a\" (also tasks[0])",
        ]
    );
}

#[test]
fn invalid_names() {
    let long = "n".repeat(limits::MAX_NAME_LEN + 1);
    let mut def = workflow(&[("ok", &[]), ("has space", &[]), ("", &[]), (&long, &[]), ("-x", &[])]);
    def.name = "my/wf".into();
    def.tasks[0].task_type = "".into();
    def.tasks[4].task_type = "a".repeat(limits::MAX_NAME_LEN);
    assert_eq!(
        errors(&def),
        [
            "name: contains '/'; use only letters, digits, '_', '.' and '-'",
            "tasks[0].task_type: must not be empty",
            "tasks[1].name: contains ' '; use only letters, digits, '_', '.' and '-'",
            "tasks[2].name: must not be empty",
            "tasks[3].name: must be at most 64 characters (got 65)",
            "tasks[4].name: must start with a letter or digit (got '-')",
        ]
    );
    def.name = String::new();
    assert_eq!(errors(&def)[0], "name: must not be empty");
}

#[test]
fn descriptions_have_a_limit() {
    let mut def = workflow(&[("a", &[])]);
    def.description = "é".repeat(limits::MAX_DESCRIPTION_LEN);
    def.tasks[0].description = "x".repeat(limits::MAX_DESCRIPTION_LEN);
    valid(&def);
    def.description.push('!');
    def.tasks[0].description.push('!');
    assert_eq!(
        errors(&def),
        [
            "description: must be at most 1024 characters (got 1025)",
            "tasks[0].description: must be at most 1024 characters (got 1025)",
        ]
    );
}

#[test]
fn descriptions_must_not_hold_nul() {
    // YAML's "\0" escape and JSON's "\u0000" both decode to NUL, which PostgreSQL text refuses.
    let def = yaml("name: wf\ndescription: \"a\\0b\"\ntasks:\n  - {name: a, task_type: t, description: \"\\0\"}\n");
    assert_eq!(
        errors(&def),
        [
            "description: must not contain the NUL character (\\u0000, at byte 1)",
            "tasks[0].description: must not contain the NUL character (\\u0000, at byte 0)",
        ]
    );
    let mut def = workflow(&[("a", &[])]);
    def.description = "line one\n\tline two".into();
    valid(&def);
}

#[test]
fn bad_retry_bounds() {
    let cases: &[(&str, &str)] = &[
        ("{max_attempts: 0}", "tasks[0].retry.max_attempts: must be at least 1 (got 0)"),
        ("{max_attempts: 101}", "tasks[0].retry.max_attempts: must be at most 100 (got 101)"),
        ("{multiplier: 0.5}", "tasks[0].retry.multiplier: must be between 1 and 10 (got 0.5)"),
        ("{multiplier: 10.5}", "tasks[0].retry.multiplier: must be between 1 and 10 (got 10.5)"),
        ("{multiplier: .nan}", "tasks[0].retry.multiplier: must be a finite number (got NaN)"),
        ("{multiplier: .inf}", "tasks[0].retry.multiplier: must be a finite number (got inf)"),
        ("{initial_backoff: 0s}", "tasks[0].retry.initial_backoff: must be between 1ms and 1h (got 0s)"),
        ("{initial_backoff: 2h}", "tasks[0].retry.initial_backoff: must be between 1ms and 1h (got 2h)"),
        (
            "{initial_backoff: 1500us}",
            "tasks[0].retry.initial_backoff: must be a whole number of milliseconds (got 1ms 500us)",
        ),
        ("{max_backoff: 25h}", "tasks[0].retry.max_backoff: must be between 1ms and 1day (got 1day 1h)"),
        ("{initial_backoff: 10s, max_backoff: 2s}", "tasks[0].retry.max_backoff: 2s is less than initial_backoff 10s"),
        ("{max_backoff: 500ms}", "tasks[0].retry.max_backoff: 500ms is less than initial_backoff 1s (the default)"),
        (
            "{initial_backoff: 10m}",
            "tasks[0].retry.initial_backoff: 10m is more than max_backoff 5m (the default); \
             raise max_backoff or lower initial_backoff",
        ),
    ];
    for (retry, want) in cases {
        let text = format!("name: wf\ntasks:\n  - name: a\n    task_type: t\n    retry: {retry}\n");
        assert_eq!(errors(&yaml(&text)), [*want], "retry: {retry}");
    }
}

#[test]
fn retry_bounds_at_the_edges_are_fine() {
    let text = "name: wf\ntasks:\n  - {name: a, task_type: t, retry: {max_attempts: 100, multiplier: 10, \
                initial_backoff: 1h, max_backoff: 24h}, timeout: 24h}\n  - {name: b, task_type: t, \
                retry: {max_attempts: 1, multiplier: 1, initial_backoff: 1ms, max_backoff: 1ms}, timeout: 100ms}\n";
    let wf = valid(&yaml(text));
    let b = &wf.tasks[1];
    assert_eq!((b.retry.max_attempts, b.retry.max_backoff), (1, Duration::from_millis(1)));
    assert_eq!(b.timeout, Duration::from_millis(100));
}

#[test]
fn settings_are_checked_and_inherited() {
    let text = "\
name: wf
tasks:
  - {name: a, task_type: t, retry: {initial_backoff: 2m}}
  - {name: b, task_type: t, retry: {max_backoff: 10ms}}
  - {name: c, task_type: t}
settings:
  default_retry: {max_backoff: 1m, initial_backoff: 20ms, max_attempts: 0}
  default_task_timeout: 50ms
";
    assert_eq!(
        errors(&yaml(text)),
        [
            "tasks[0].retry.initial_backoff: 2m is more than max_backoff 1m (from settings.default_retry); \
             raise max_backoff or lower initial_backoff",
            "tasks[1].retry.max_backoff: 10ms is less than initial_backoff 20ms (from settings.default_retry)",
            "settings.default_retry.max_attempts: must be at least 1 (got 0)",
            "settings.default_task_timeout: must be between 100ms and 1day (got 50ms)",
        ]
    );
    let text = "name: wf\ntasks: [{name: a, task_type: t}]\nsettings: {default_retry: {initial_backoff: 6m}}\n";
    assert_eq!(
        errors(&yaml(text)),
        ["settings.default_retry.initial_backoff: 6m is more than max_backoff 5m (the default); \
          raise max_backoff or lower initial_backoff"]
    );
}

#[test]
fn resolution_order_is_task_then_settings_then_defaults() {
    let text = "\
name: wf
tasks:
  - {name: a, task_type: t, retry: {max_attempts: 7, jitter: false}, timeout: 10s}
  - {name: b, task_type: t}
settings:
  default_retry: {multiplier: 3, max_attempts: 4}
  default_task_timeout: 1m
";
    let wf = valid(&yaml(text));
    let want_a = RetryPolicy { max_attempts: 7, multiplier: 3.0, jitter: false, ..RetryPolicy::default() };
    let want_b = RetryPolicy { max_attempts: 4, multiplier: 3.0, ..RetryPolicy::default() };
    assert_eq!((&wf.tasks[0].retry, wf.tasks[0].timeout), (&want_a, Duration::from_secs(10)));
    assert_eq!((&wf.tasks[1].retry, wf.tasks[1].timeout), (&want_b, Duration::from_secs(60)));
    let plain = valid(&workflow(&[("a", &[])]));
    assert_eq!(plain.tasks[0].retry, RetryPolicy::default());
    assert_eq!(plain.tasks[0].timeout, limits::DEFAULT_TASK_TIMEOUT);
}

#[test]
fn timeouts_out_of_bounds() {
    for (timeout, want) in [
        ("99ms", "tasks[0].timeout: must be between 100ms and 1day (got 99ms)"),
        ("2days", "tasks[0].timeout: must be between 100ms and 1day (got 2days)"),
        ("100ms 1us", "tasks[0].timeout: must be a whole number of milliseconds (got 100ms 1us)"),
    ] {
        let text = format!("name: wf\ntasks: [{{name: a, task_type: t, timeout: {timeout}}}]\n");
        assert_eq!(errors(&yaml(&text)), [want]);
    }
}

#[test]
fn every_error_at_once_in_definition_order() {
    let text = "\
name: bad name
tasks:
  - {name: a, task_type: t, depends_on: [b]}
  - {name: b, task_type: 't!', depends_on: [a, ghost], timeout: 1ms, retry: {max_attempts: 0}}
  - {name: a, task_type: t}
settings: {default_task_timeout: 48h}
";
    assert_eq!(
        errors(&yaml(text)),
        [
            "name: contains ' '; use only letters, digits, '_', '.' and '-'",
            "tasks[0].depends_on[0]: cycle: a -> b -> a",
            "tasks[1].task_type: contains '!'; use only letters, digits, '_', '.' and '-'",
            "tasks[1].depends_on[1]: unknown task \"ghost\"",
            "tasks[1].retry.max_attempts: must be at least 1 (got 0)",
            "tasks[1].timeout: must be between 100ms and 1day (got 1ms)",
            "tasks[2].name: duplicate task name \"a\" (also tasks[0])",
            "settings.default_task_timeout: must be between 100ms and 1day (got 2days)",
        ]
    );
}

#[test]
fn definition_size_limit() {
    let mut def = workflow(&[]);
    def.tasks = (0..limits::MAX_TASKS).map(|i| task(&format!("t{i}"), &[])).collect();
    for t in &mut def.tasks {
        t.description = "d".repeat(limits::MAX_DESCRIPTION_LEN);
    }
    let errs = errors(&def);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("definition: too large: "), "{}", errs[0]);
    assert!(errs[0].ends_with(" bytes as canonical JSON (limit 1048576 bytes)"), "{}", errs[0]);
}
