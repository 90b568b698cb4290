//! Checks of a definition's scalar fields (names, descriptions, retry bounds, timeouts), resolving policies as it goes.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Duration;

use super::path::{Path, Problems, RetryField, SettingsField, TaskField, Top};
use crate::domain::definition::{RetrySpec, WorkflowDefinition};
use crate::domain::limits::{self, name_problem};
use crate::domain::retry::RetryPolicy;

/// The policies and timeouts every task ends up with.
#[derive(Debug)]
pub(super) struct Resolved {
    pub(super) settings_retry: RetryPolicy,
    pub(super) settings_timeout: Duration,
    /// One `(retry, timeout)` per task, in definition order.
    pub(super) tasks: Vec<(RetryPolicy, Duration)>,
}

/// Checks every field that is not about dependencies and resolves the defaults.
pub(super) fn check(def: &WorkflowDefinition, problems: &mut Problems) -> Resolved {
    check_name(&def.name, &Path::top(Top::Name), problems);
    check_description(&def.description, &Path::top(Top::Description), problems);
    let count = def.tasks.len();
    if count == 0 {
        problems.push(&Path::top(Top::Tasks), "a workflow needs at least one task");
    } else if count > limits::MAX_TASKS {
        let reason = format!("too many tasks: {count} (limit {})", limits::MAX_TASKS);
        problems.push(&Path::top(Top::Tasks), reason);
    }

    let settings = &def.settings;
    let settings_retry_at = Path::settings(SettingsField::DefaultRetry);
    let settings_spec = settings.default_retry.as_ref();
    let settings_retry = check_retry(settings_spec, None, &settings_retry_at, problems);
    let settings_timeout = settings.default_task_timeout.unwrap_or(limits::DEFAULT_TASK_TIMEOUT);
    if let Some(timeout) = settings.default_task_timeout {
        check_timeout(timeout, &Path::settings(SettingsField::DefaultTaskTimeout), problems);
    }
    if !settings.concurrency_policy.is_default() && !settings.limits_concurrency() {
        let reason =
            format!("{} needs a limit to act on: set max_concurrent_runs or max_per_key", settings.concurrency_policy);
        problems.push(&Path::settings(SettingsField::ConcurrencyPolicy), reason);
    }
    if let Some(retention) = settings.retention
        && let Some(reason) = duration_problem(retention, limits::MIN_RETENTION, limits::MAX_RETENTION)
    {
        problems.push(&Path::settings(SettingsField::Retention), reason);
    }

    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    let mut tasks = Vec::with_capacity(count);
    for (i, task) in def.tasks.iter().enumerate() {
        let name_at = Path::task_field(i, TaskField::Name);
        if check_name(&task.name, &name_at, problems) {
            match first_seen.entry(task.name.as_str()) {
                Entry::Occupied(first) => {
                    let reason = format!("duplicate task name {:?} (also tasks[{}])", task.name, first.get());
                    problems.push(&name_at, reason);
                }
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
        check_name(&task.task_type, &Path::task_field(i, TaskField::TaskType), problems);
        let fallback = (&settings_retry, settings_spec);
        let retry_at = Path::task_field(i, TaskField::Retry);
        let retry = check_retry(task.retry.as_ref(), Some(fallback), &retry_at, problems);
        if let Some(timeout) = task.timeout {
            check_timeout(timeout, &Path::task_field(i, TaskField::Timeout), problems);
        }
        check_description(&task.description, &Path::task_field(i, TaskField::Description), problems);
        tasks.push((retry, task.timeout.unwrap_or(settings_timeout)));
    }
    Resolved { settings_retry, settings_timeout, tasks }
}

/// Reports an invalid name; returns whether the name is valid.
fn check_name(name: &str, at: &Path, problems: &mut Problems) -> bool {
    let reason = name_problem(name);
    let valid = reason.is_none();
    if let Some(reason) = reason {
        problems.push(at, reason);
    }
    valid
}

/// Reports a description that is too long or holds a NUL character (stored as text, which in
/// PostgreSQL cannot hold NUL).
fn check_description(text: &str, at: &Path, problems: &mut Problems) {
    let len = text.chars().count();
    if len > limits::MAX_DESCRIPTION_LEN {
        let reason = format!("must be at most {} characters (got {len})", limits::MAX_DESCRIPTION_LEN);
        problems.push(at, reason);
    }
    if let Some(byte) = text.find('\0') {
        problems.push(at, format!("must not contain the NUL character (\\u0000, at byte {byte})"));
    }
}

fn check_timeout(timeout: Duration, at: &Path, problems: &mut Problems) {
    if let Some(reason) = duration_problem(timeout, limits::MIN_TASK_TIMEOUT, limits::MAX_TASK_TIMEOUT) {
        problems.push(at, reason);
    }
}

/// Checks a retry spec found at `at` and resolves it. `fallback` is the settings'
/// resolved policy and spec for a task, `None` (the built-in defaults) for the settings.
fn check_retry(
    spec: Option<&RetrySpec>,
    fallback: Option<(&RetryPolicy, Option<&RetrySpec>)>,
    at: &Path,
    problems: &mut Problems,
) -> RetryPolicy {
    let defaults = RetryPolicy::default();
    let (fallback_policy, fallback_spec) = fallback.unwrap_or((&defaults, None));
    let resolved = RetryPolicy::resolve(spec, fallback_policy);
    let Some(spec) = spec else {
        return resolved;
    };
    if let Some(attempts) = spec.max_attempts {
        let reason = if attempts == 0 {
            Some("must be at least 1 (got 0)".to_owned())
        } else if attempts > limits::MAX_ATTEMPTS {
            Some(format!("must be at most {} (got {attempts})", limits::MAX_ATTEMPTS))
        } else {
            None
        };
        if let Some(reason) = reason {
            problems.push(&at.retry(RetryField::MaxAttempts), reason);
        }
    }
    if let Some(multiplier) = spec.multiplier {
        let (min, max) = (limits::MIN_MULTIPLIER, limits::MAX_MULTIPLIER);
        let at = at.retry(RetryField::Multiplier);
        if !multiplier.is_finite() {
            problems.push(&at, format!("must be a finite number (got {multiplier})"));
        } else if !(min..=max).contains(&multiplier) {
            problems.push(&at, format!("must be between {min} and {max} (got {multiplier})"));
        }
    }
    let initial_problem = |d| duration_problem(d, limits::MIN_INITIAL_BACKOFF, limits::MAX_INITIAL_BACKOFF);
    let max_problem = |d| duration_problem(d, limits::MIN_MAX_BACKOFF, limits::MAX_MAX_BACKOFF);
    if let Some(reason) = spec.initial_backoff.and_then(initial_problem) {
        problems.push(&at.retry(RetryField::InitialBackoff), reason);
    }
    if let Some(reason) = spec.max_backoff.and_then(max_problem) {
        problems.push(&at.retry(RetryField::MaxBackoff), reason);
    }

    // The order of the two bounds, once each is known to be fine on its own.
    let (initial, max) = (resolved.initial_backoff, resolved.max_backoff);
    let both_fine = initial_problem(initial).is_none() && max_problem(max).is_none();
    if both_fine && initial > max {
        // Only a task has a fallback spec, the settings' own.
        let inherited = |set_in_settings: bool| {
            if set_in_settings { "from settings.default_retry" } else { "the default" }
        };
        let fmt = humantime::format_duration;
        if spec.max_backoff.is_some() {
            let from = match spec.initial_backoff {
                Some(_) => String::new(),
                None => format!(" ({})", inherited(fallback_spec.is_some_and(|s| s.initial_backoff.is_some()))),
            };
            let reason = format!("{} is less than initial_backoff {}{from}", fmt(max), fmt(initial));
            problems.push(&at.retry(RetryField::MaxBackoff), reason);
        } else if spec.initial_backoff.is_some() {
            let from = inherited(fallback_spec.is_some_and(|s| s.max_backoff.is_some()));
            let reason = format!(
                "{} is more than max_backoff {} ({from}); raise max_backoff or lower initial_backoff",
                fmt(initial),
                fmt(max)
            );
            problems.push(&at.retry(RetryField::InitialBackoff), reason);
        }
        // Neither set here: the problem is inherited and reported where it is set.
    }
    resolved
}

/// Why `d` is not an acceptable duration in `[min, max]`, or `None`. Whole
/// milliseconds only: policies are stored with millisecond precision.
fn duration_problem(d: Duration, min: Duration, max: Duration) -> Option<String> {
    let fmt = humantime::format_duration;
    if d < min || d > max {
        Some(format!("must be between {} and {} (got {})", fmt(min), fmt(max), fmt(d)))
    } else if !d.subsec_nanos().is_multiple_of(1_000_000) {
        Some(format!("must be a whole number of milliseconds (got {})", fmt(d)))
    } else {
        None
    }
}
