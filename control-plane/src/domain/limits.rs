//! Limits and defaults for workflow definitions, runs and names (the numbers every check uses).

use std::time::Duration;

/// Longest allowed name (workflow, task, task type), in bytes; names are ASCII.
pub const MAX_NAME_LEN: usize = 64;
/// Most tasks one workflow may hold.
pub const MAX_TASKS: usize = 1000;
/// Longest dependency chain, counted in tasks (a lone task has depth 1).
pub const MAX_DEPTH: usize = 100;
/// Most entries in one task's `depends_on`.
pub const MAX_DEPENDENCIES_PER_TASK: usize = 100;
/// Largest definition, measured as the size of its canonical JSON (1 MiB).
pub const MAX_DEFINITION_BYTES: usize = 1024 * 1024;
/// Largest definition text (YAML or JSON) parsed at all, in bytes (4 MiB, the gRPC message
/// limit): larger text is refused before parsing.
pub const MAX_DEFINITION_TEXT_BYTES: usize = 4 * 1024 * 1024;
/// Longest description (workflow or task), in characters.
pub const MAX_DESCRIPTION_LEN: usize = 1024;
/// Most attempts a retry policy may allow (the first attempt counts).
pub const MAX_ATTEMPTS: u32 = 100;
/// Largest JSON document kept only in a database row, in bytes: a schedule's input, an error's
/// details (1 MiB). Run inputs and task outputs have their own, larger bound (`PayloadLimits`).
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;
/// Largest error details a worker may report (and the bound of [`crate::domain::payload::output_problem`]
/// when no other is given), in bytes of JSON text.
pub const MAX_OUTPUT_BYTES: usize = MAX_INPUT_BYTES;
/// Run inputs and task outputs up to this size stay in the database by default (256 KiB); larger
/// ones go to object storage (`--payload-inline-max`).
pub const DEFAULT_PAYLOAD_INLINE_MAX: usize = 256 * 1024;
/// Largest run input or task output by default, in bytes of JSON text (8 MiB; `--payload-max`).
pub const DEFAULT_PAYLOAD_MAX: usize = 8 * 1024 * 1024;
/// The most `--payload-max` may allow (32 MiB): a result carrying it fits a worker stream message.
pub const PAYLOAD_MAX_LIMIT: usize = 32 * 1024 * 1024;
/// Largest message on a worker stream, either way (64 MiB): the control plane's limit, and the
/// receive limit every worker SDK sets.
pub const MAX_WORKER_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// Largest task input an assignment carries (the run input plus every dependency's output as the
/// worker receives them): a worker stream message less 1 MiB for the rest of the assignment.
/// A task whose input is larger fails with `input_too_large`, not retried.
pub const MAX_TASK_INPUT_BYTES: usize = MAX_WORKER_MESSAGE_BYTES - 1024 * 1024;
/// Longest error message kept, in bytes; longer ones are cut.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 16 * 1024;
/// Longest idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;

/// Smallest allowed `initial_backoff`.
pub const MIN_INITIAL_BACKOFF: Duration = Duration::from_millis(1);
/// Largest allowed `initial_backoff` (1h).
pub const MAX_INITIAL_BACKOFF: Duration = Duration::from_secs(60 * 60);
/// Smallest allowed `max_backoff`.
pub const MIN_MAX_BACKOFF: Duration = Duration::from_millis(1);
/// Largest allowed `max_backoff` (24h).
pub const MAX_MAX_BACKOFF: Duration = Duration::from_secs(24 * 60 * 60);
/// Smallest allowed backoff multiplier (1.0 = constant backoff).
pub const MIN_MULTIPLIER: f64 = 1.0;
/// Largest allowed backoff multiplier.
pub const MAX_MULTIPLIER: f64 = 10.0;
/// Shortest allowed task timeout.
pub const MIN_TASK_TIMEOUT: Duration = Duration::from_millis(100);
/// Longest allowed task timeout (24h).
pub const MAX_TASK_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
/// Bounds of a workflow's `settings.retention` (how long finished runs are kept).
pub const MIN_RETENTION: Duration = Duration::from_secs(60);
pub const MAX_RETENTION: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
/// Longest concurrency key of a trigger, in bytes.
pub const MAX_CONCURRENCY_KEY_LEN: usize = 128;
/// Longest worker name, in bytes.
pub const MAX_WORKER_NAME_LEN: usize = 256;
/// Most labels one worker may carry.
pub const MAX_WORKER_LABELS: usize = 64;
/// Longest worker label key, in bytes.
pub const MAX_LABEL_KEY_LEN: usize = 64;
/// Longest worker label value, in bytes.
pub const MAX_LABEL_VALUE_LEN: usize = 256;
/// Longest SDK language or version a worker reports, in bytes.
pub const MAX_SDK_FIELD_LEN: usize = 64;

/// Attempts when nothing says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Backoff before the second attempt when nothing says otherwise.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Backoff growth factor when nothing says otherwise.
pub const DEFAULT_MULTIPLIER: f64 = 2.0;
/// Backoff cap when nothing says otherwise (5m).
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);
/// Full jitter is on unless turned off.
pub const DEFAULT_JITTER: bool = true;
/// Task execution timeout when nothing says otherwise (5m).
pub const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Whether `name` is a valid name: 1..=[`MAX_NAME_LEN`] bytes matching
/// `^[A-Za-z0-9][A-Za-z0-9_.-]*$`.
pub fn is_valid_name(name: &str) -> bool {
    name_problem(name).is_none()
}

/// Why `name` is not a valid name (see [`is_valid_name`]), or `None` if it is.
pub fn name_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Some("must not be empty".to_owned());
    };
    if !first.is_ascii_alphanumeric() {
        return Some(format!("must start with a letter or digit (got {first:?})"));
    }
    if let Some(bad) = chars.find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))) {
        return Some(format!("contains {bad:?}; use only letters, digits, '_', '.' and '-'"));
    }
    // Only ASCII is left, so bytes are characters.
    if name.len() > MAX_NAME_LEN {
        return Some(format!("must be at most {MAX_NAME_LEN} characters (got {})", name.len()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        for name in ["a", "A", "0", "fetch", "fetch-user_2.v1", "9lives", "a-", "a.", "a_"] {
            assert!(is_valid_name(name), "{name:?} should be valid");
        }
        assert!(is_valid_name(&"x".repeat(MAX_NAME_LEN)));
    }

    #[test]
    fn invalid_names() {
        let too_long = "x".repeat(MAX_NAME_LEN + 1);
        let cases: &[(&str, &str)] = &[
            ("", "must not be empty"),
            (&too_long, "at most 64 characters (got 65)"),
            ("-a", "must start with a letter or digit (got '-')"),
            ("_a", "must start with a letter or digit (got '_')"),
            (".a", "must start with a letter or digit (got '.')"),
            (" a", "must start with a letter or digit (got ' ')"),
            ("é", "must start with a letter or digit (got 'é')"),
            ("a b", "contains ' '"),
            ("a/b", "contains '/'"),
            ("a:b", "contains ':'"),
            ("aé", "contains 'é'"),
            ("a\n", "contains '\\n'"),
        ];
        for (name, want) in cases {
            assert!(!is_valid_name(name), "{name:?} should be invalid");
            let reason = name_problem(name).unwrap_or_default();
            assert!(reason.contains(want), "{name:?}: {reason:?} lacks {want:?}");
        }
    }

    #[test]
    fn defaults_are_within_bounds() {
        assert!((1..=MAX_ATTEMPTS).contains(&DEFAULT_MAX_ATTEMPTS));
        assert!((MIN_INITIAL_BACKOFF..=MAX_INITIAL_BACKOFF).contains(&DEFAULT_INITIAL_BACKOFF));
        assert!((MIN_MAX_BACKOFF..=MAX_MAX_BACKOFF).contains(&DEFAULT_MAX_BACKOFF));
        assert!(DEFAULT_INITIAL_BACKOFF <= DEFAULT_MAX_BACKOFF);
        assert!((MIN_MULTIPLIER..=MAX_MULTIPLIER).contains(&DEFAULT_MULTIPLIER));
        assert!((MIN_TASK_TIMEOUT..=MAX_TASK_TIMEOUT).contains(&DEFAULT_TASK_TIMEOUT));
    }
}
