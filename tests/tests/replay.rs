//! `braid replay` against a real `braid dev`: a recorded run with a retry reproduces its states, and a changed version shows its differences.

use braid_e2e::{ExampleWorker, braid, start_dev, stderr, stdout};
use std::path::Path;

const V1: &str = "\
name: replayed
settings:
  default_retry: {max_attempts: 3, initial_backoff: 50ms, jitter: false}
tasks:
  - {name: extract, task_type: noop}
  - {name: flaky, task_type: fail, depends_on: [extract]}
  - {name: load, task_type: noop, depends_on: [flaky]}
";

/// v2 adds `audit`, makes `load` wait for it too, and gives `flaky` a single attempt.
const V2: &str = "\
name: replayed
settings:
  default_retry: {max_attempts: 3, initial_backoff: 50ms, jitter: false}
tasks:
  - {name: extract, task_type: noop}
  - {name: flaky, task_type: fail, depends_on: [extract], retry: {max_attempts: 1}}
  - {name: audit, task_type: noop, depends_on: [extract]}
  - {name: load, task_type: noop, depends_on: [flaky, audit]}
";

fn apply(dir: &Path, ep: &str, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let out = braid(&["workflow", "apply", "-f", path.to_str().unwrap(), "--endpoint", ep]);
    assert!(out.status.success(), "apply {name}: {}", stderr(&out));
}

/// Starts a run and waits for it to end; returns its id.
fn run_to_end(ep: &str, input: &str) -> String {
    let out = braid(&["run", "start", "replayed", "--input", input, "--endpoint", ep, "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["id"].as_str().unwrap().to_owned();
    // `run watch` exits when the run ends (0 succeeded, 1 failed).
    let _ = braid(&["run", "watch", &id, "--endpoint", ep]);
    id
}

#[test]
fn a_replayed_run_reproduces_its_states_and_a_changed_version_shows_its_differences() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start_dev(&dir.path().join("data"));
    let ep = dev.endpoint();
    let _worker = ExampleWorker::start(&ep, "replay-w", 4, "noop,fail", &dir.path().join("ledger"), &[]);
    apply(dir.path(), &ep, "v1.yaml", V1);

    // One failure, then success on attempt 2.
    let id = run_to_end(&ep, r#"{"times": 1}"#);
    let out = braid(&["replay", &id, "--endpoint", &ep]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    for line in ["task_retry_scheduled flaky#1", "task_leased flaky#2", "task_succeeded flaky#2", "run_succeeded"] {
        assert!(text.contains(line), "the trace shows {line}:\n{text}");
    }
    assert!(text.contains("the replay reproduces the recorded run"), "{text}");

    // A fatal failure: the run fails and load is skipped; the replay shows the same.
    let failed = run_to_end(&ep, r#"{"times": 1, "fatal": true}"#);
    let out = braid(&["replay", &failed, "--endpoint", &ep]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("task_skipped load") && text.contains("run_failed"), "{text}");

    // Against v2: audit is new, load waits a round longer, flaky has no second attempt, so the run fails.
    apply(dir.path(), &ep, "v2.yaml", V2);
    let out = braid(&["replay", &id, "--against-version", "2", "--endpoint", &ep]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("+ audit"), "audit added:\n{text}");
    assert!(text.contains("! flaky") && text.contains("succeeded -> failed"), "flaky fails:\n{text}");
    assert!(text.contains("! load") && text.contains("succeeded -> skipped"), "load skipped:\n{text}");
    assert!(text.contains("depends on [\"flaky\"] -> [\"flaky\", \"audit\"]"), "load's dependencies:\n{text}");
    assert!(text.contains("(run)") && text.contains("succeeded -> failed"), "the run fails:\n{text}");

    // The same version: no differences.
    let out = braid(&["replay", &id, "--against-version", "1", "--endpoint", &ep]);
    assert!(stdout(&out).contains("no differences"), "{}", stdout(&out));

    // An unknown run is a clear error.
    let out = braid(&["replay", "01a22e03-0a0a-77c6-8bfc-5112a3df51a9", "--endpoint", &ep]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("NotFound"), "{}", stderr(&out));
}
