//! The `braid-example-worker` binary against the fake server: its task types, readiness line, ledger and SIGTERM drain.

mod support;

use braid_worker::proto::{CancelTask, TaskAssignment};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};

const HOUR: Duration = Duration::from_secs(3600);

/// An output, or an error's (type, retryable).
type Expected = Result<Value, (&'static str, bool)>;

fn with(mut a: TaskAssignment, attempt: u32, input: Value) -> TaskAssignment {
    a.attempt = attempt;
    a.lease_id = format!("{}-{attempt}", a.lease_id);
    a.input_json = json!({"input": input, "deps": {"up": {"y": 2}}}).to_string();
    a
}

#[tokio::test]
async fn the_example_worker_serves_its_task_types_keeps_a_ledger_and_drains_on_sigterm() {
    let mut server = FakeServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = dir.path().join("ledger.jsonl");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_braid-example-worker"))
        .args(["--endpoint", &server.endpoint, "--name", "ex-1", "--slots", "2", "--drain-timeout", "5s"])
        .arg("--ledger")
        .arg(&ledger)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the example worker");
    let mut stream = server.accept().await;
    let hello = stream.handshake(HOUR, 2 * HOUR).await;
    assert_eq!((hello.worker_name.as_str(), hello.slots), ("ex-1", 2));
    assert_eq!(hello.task_types, ["echo", "fail", "noop", "sleep"]);
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = within("the readiness line", stdout.next_line()).await.expect("read stdout");
    assert_eq!(line.as_deref(), Some("worker ex-1 connected"));

    let cases: Vec<(TaskAssignment, Expected)> = vec![
        (with(assignment("n", "noop", ""), 1, json!([1, "any"])), Ok(json!({}))),
        (
            with(assignment("e", "echo", ""), 1, json!({"x": 1})),
            Ok(json!({"input": {"x": 1}, "deps": {"up": {"y": 2}}})),
        ),
        (with(assignment("f", "fail", ""), 1, json!({"times": 1})), Err(("injected", true))),
        (with(assignment("f", "fail", ""), 2, json!({"times": 1})), Ok(json!({"attempt": 2}))),
        (with(assignment("g", "fail", ""), 2, json!({"times": 2, "fatal": true})), Err(("injected", false))),
        (with(assignment("h", "fail", ""), 9, json!({"always": true})), Err(("injected", true))),
        (with(assignment("s", "sleep", ""), 1, json!({"ms": 10})), Ok(json!({"slept_ms": 10}))),
    ];
    for (a, expected) in &cases {
        stream.assign(a.clone());
        let result = stream.result().await;
        assert_eq!((result.task_id.as_str(), result.lease_id.as_str()), (a.task_id.as_str(), a.lease_id.as_str()));
        match expected {
            Ok(out) => assert_eq!(&output(&result), out, "{}", a.task_id),
            Err((kind, retryable)) => {
                let err = error(&result);
                assert_eq!((err.r#type.as_str(), err.retryable), (*kind, *retryable), "{}: {err:?}", a.task_id);
            }
        }
        stream.ack(&result, true, 0, "");
    }

    // A long sleep, cancelled by the server.
    let long = with(assignment("z", "sleep", ""), 1, json!({"ms": 600_000}));
    stream.assign(long.clone());
    // Whether the cancel arrives before or after the handler starts, the answer is a retryable
    // "cancelled" error.
    stream.send(In::Cancel(CancelTask {
        task_id: long.task_id.clone(),
        attempt: long.attempt,
        lease_id: long.lease_id.clone(),
        reason: "run cancelled".to_owned(),
    }));
    let result = stream.result().await;
    let err = error(&result);
    assert!(err.retryable && (err.r#type == "cancelled"), "{err:?}");
    stream.ack(&result, false, 9, "run cancelled");

    // SIGTERM: Drain, then the stream ends and the process exits 0.
    let pid = child.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(killed.success());
    assert!(matches!(stream.recv_skipping_heartbeats().await, Some(Out::Drain(_))));
    assert!(stream.recv_skipping_heartbeats().await.is_none());
    let status = within("the process to exit", child.wait()).await.expect("wait");
    assert!(status.success(), "{status}");

    let text = std::fs::read_to_string(&ledger).expect("ledger");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    let count = |event: &str| lines.iter().filter(|l| l["event"] == event).count();
    let finishes = cases.len() + 1;
    assert_eq!((count("finish"), count("ack")), (finishes, finishes), "{text}");
    assert!(count("start") >= cases.len(), "{text}");
    for line in &lines {
        assert_eq!((line["worker"].as_str(), line["worker_id"].as_str()), (Some("ex-1"), Some("w-1")));
        assert!(line["ts"].as_str().is_some_and(|ts| ts.ends_with('Z')), "{line}");
        assert!(line["lease_id"].as_str().is_some_and(|l| l.starts_with("L-")), "{line}");
    }
    let f2 = lines
        .iter()
        .find(|l| l["event"] == "finish" && l["task_id"] == "f" && l["attempt"] == 2)
        .expect("finish of f attempt 2");
    assert_eq!(f2["outcome"], "succeeded");
    let f1 = lines.iter().find(|l| l["event"] == "finish" && l["task_id"] == "f" && l["attempt"] == 1).expect("f1");
    assert_eq!((f1["outcome"].as_str(), f1["error_type"].as_str()), (Some("failed"), Some("injected")));
    let z = lines.iter().find(|l| l["event"] == "ack" && l["task_id"] == "z").expect("ack of z");
    assert_eq!((z["outcome"].as_str(), z["code"].as_i64()), (Some("rejected"), Some(9)));
}
