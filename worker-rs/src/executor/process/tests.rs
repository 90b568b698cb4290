//! `ProcessExecutor` with small shell scripts written to a temporary directory.

use super::*;
use crate::CancelReason;
use crate::executor::test_support::{context, within};
use serde_json::json;
use std::path::Path;
use tempfile::TempDir;

/// Writes `body` as a `#!/bin/sh` script in `dir`; it runs as `sh SCRIPT` (not exec'd directly:
/// a file just written may be "busy" while another test thread forks).
fn script(dir: &TempDir, name: &str, body: &str) -> ProcessExecutorBuilder {
    let path = dir.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    ProcessExecutor::builder("sh").arg(path.to_string_lossy())
}

async fn run(exec: ProcessExecutorBuilder, input: Value) -> Result<Value, TaskError> {
    let (ctx, _) = context(json!({"up": [1]}));
    within("the process", exec.build().expect("builds").execute(input, ctx)).await
}

/// Waits until `path` holds a pid.
async fn pid_in(path: &Path) -> u32 {
    within("the script's pid file", async {
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if let Ok(pid) = text.trim().parse() {
                return pid;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// Whether `pid` is gone (or a zombie nobody has reaped yet: it runs no more).
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name in parentheses.
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

async fn wait_dead(pid: u32, what: &str) {
    within(what, async {
        while !is_dead(pid) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn stdout_json_is_the_output_and_the_process_gets_input_and_context() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = r#"input=$(cat)
printf '{"got": %s, "attempt": "%s", "task": "%s", "extra": "%s", "home": "%s", "trace": "%s", "pwd": "%s"}\n' \
  "$input" "$BRAID_ATTEMPT" "$BRAID_TASK_ID" "$EXTRA" "${HOME:-none}" "$TRACEPARENT" "$(pwd)""#;
    let exec = script(&dir, "ok.sh", body).env("EXTRA", "e").env_remove("HOME").current_dir(dir.path());
    let out = run(exec, json!({"n": 1})).await.expect("succeeds");
    assert_eq!(out["got"], json!({"input": {"n": 1}, "deps": {"up": [1]}}));
    assert_eq!((out["attempt"].as_str(), out["task"].as_str()), (Some("2"), Some("t-1")));
    assert_eq!((out["extra"].as_str(), out["home"].as_str()), (Some("e"), Some("none")));
    assert!(out["trace"].as_str().is_some_and(|t| t.starts_with("00-")), "{out}");
    let pwd = std::fs::canonicalize(dir.path()).expect("canonical");
    assert_eq!(out["pwd"].as_str().map(Path::new), Some(pwd.as_path()));
}

#[tokio::test]
async fn exit_codes_map_to_retryable_or_not_with_the_end_of_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = "cat >/dev/null\necho 'first line' >&2\necho \"failing with $CODE\" >&2\nexit \"$CODE\"";
    for (code, retryable) in [(75, true), (1, false), (3, false)] {
        let e = run(script(&dir, "exit.sh", body).env("CODE", code.to_string()), Value::Null).await.expect_err("fails");
        assert_eq!((e.error_type(), e.is_retryable()), ("exit_code", retryable), "{code}: {e}");
        assert!(e.message().contains(&format!("exited with code {code}; stderr: first line")), "{e}");
        assert_eq!(e.details().map(|d| d["exit_code"].clone()), Some(json!(code)));
    }
    let custom = script(&dir, "exit.sh", body).env("CODE", "3").retryable_exit_codes([3, 4]);
    assert!(run(custom, Value::Null).await.expect_err("fails").is_retryable());
    // Only the end of a long stderr is kept.
    let noisy =
        script(&dir, "noisy.sh", "i=0\nwhile [ $i -lt 2000 ]; do echo \"line $i\" >&2; i=$((i+1)); done\nexit 1");
    let e = run(noisy, Value::Null).await.expect_err("fails");
    assert!(e.message().ends_with("line 1999") && !e.message().contains("line 0\n"), "{}", e.message().len());
    assert!(e.message().len() < 5000, "{}", e.message().len());
}

#[tokio::test]
async fn bad_stdout_a_signal_and_a_missing_program() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = run(script(&dir, "text.sh", "echo 'all done!'"), Value::Null).await.expect_err("not JSON");
    assert_eq!((e.error_type(), e.is_retryable()), ("bad_output", false));
    assert!(e.message().contains("stdout of `sh") && e.message().contains("all done!"), "{e}");
    let e = run(script(&dir, "big.sh", "yes '\"x\"'"), Value::Null).await.expect_err("too large");
    assert_eq!((e.error_type(), e.is_retryable()), ("output_too_large", false), "{e}");
    let e = run(script(&dir, "sig.sh", "kill -TERM $$"), Value::Null).await.expect_err("signal");
    assert_eq!((e.error_type(), e.is_retryable()), ("signal", true), "{e}");
    assert!(e.message().contains("signal 15 (SIGTERM)"), "{e}");
    let e = run(ProcessExecutor::builder("/nonexistent/program"), Value::Null).await.expect_err("spawn");
    assert_eq!((e.error_type(), e.is_retryable()), ("spawn", false), "{e}");
    // A process that does not read a large input still succeeds.
    let big = json!({"blob": "y".repeat(1024 * 1024)});
    assert_eq!(run(script(&dir, "deaf.sh", "echo '{}'"), big).await.expect("succeeds"), json!({}));
}

/// Starts a script that records its pid and its child's, then sleeps; returns both pids.
fn sleeper(dir: &TempDir) -> ProcessExecutorBuilder {
    let body = format!("echo $$ > '{0}/pid'\nsleep 600 &\necho $! > '{0}/child'\nwait", dir.path().display());
    script(dir, "sleeper.sh", &body)
}

#[tokio::test]
async fn cancellation_kills_the_process_and_its_children() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exec = sleeper(&dir).build().expect("builds");
    let (ctx, signal) = context(Value::Null);
    let call = tokio::spawn(async move { exec.execute(Value::Null, ctx).await });
    let (pid, child) = (pid_in(&dir.path().join("pid")).await, pid_in(&dir.path().join("child")).await);
    assert!(!is_dead(pid) && !is_dead(child));
    signal.cancel(CancelReason::Server("run cancelled".to_owned()));
    let e = within("the executor to return", call).await.expect("joins").expect_err("cancelled");
    assert_eq!((e.error_type(), e.is_retryable()), ("cancelled", true), "{e}");
    // The script itself was reaped: kill -0 finds no such process.
    let probe = std::process::Command::new("kill").args(["-0", &pid.to_string()]).output().expect("kill -0");
    assert!(!probe.status.success(), "process {pid} is still there");
    wait_dead(child, "the script's child to die").await;
}

#[tokio::test]
async fn the_timeout_kills_the_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exec = sleeper(&dir).timeout(Duration::from_millis(300));
    let e = run(exec, Value::Null).await.expect_err("times out");
    assert_eq!((e.error_type(), e.is_retryable()), ("timeout", true), "{e}");
    // On a slow machine the script may not have got as far as writing its pids: nothing to check.
    for name in ["pid", "child"] {
        if let Ok(pid) = std::fs::read_to_string(dir.path().join(name)).unwrap_or_default().trim().parse() {
            wait_dead(pid, name).await;
        }
    }
}

#[test]
fn settings_are_checked() {
    assert!(matches!(ProcessExecutor::builder("").build(), Err(ExecutorError::EmptyCommand)));
    let e = ProcessExecutor::builder("x").current_dir("/nonexistent/dir").build().expect_err("dir");
    assert!(matches!(e, ExecutorError::NotADirectory(_)));
    let e = ProcessExecutor::builder("x").retryable_exit_codes([0, 75]).build().expect_err("zero");
    assert!(matches!(e, ExecutorError::RetryableZero));
    let e = ProcessExecutor::builder("x").timeout(Duration::ZERO).build().expect_err("zero timeout");
    assert!(matches!(e, ExecutorError::Zero("timeout")));
    let ok = ProcessExecutor::builder("python3").args(["report.py", "--fast"]).build().expect("ok");
    assert_eq!(ok.command_line(), "python3 report.py --fast");
}
