//! Executors registered on a worker, and the `braid-worker` binary serving a config file, against the fake server.

mod support;

use axum::Router;
use axum::routing::post;
use braid_worker::proto::CancelTask;
use braid_worker::{Executor, ProcessExecutor, TaskContext, TaskError};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};

const HOUR: Duration = Duration::from_secs(3600);

/// An executor that answers with what it was given.
struct Mirror;

impl Executor for Mirror {
    async fn execute(&self, input: Value, ctx: TaskContext) -> Result<Value, TaskError> {
        Ok(json!({"input": input, "task": ctx.task_id(), "attempt": ctx.attempt(), "deps": ctx.deps_raw()}))
    }
}

fn envelope(input: Value) -> String {
    json!({"input": input, "deps": {"up": {"y": 2}}}).to_string()
}

/// Waits until `path` holds a pid.
async fn pid_in(path: &Path) -> String {
    within("the pid file", async {
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text.trim().parse::<u32>().is_ok() {
                return text.trim().to_owned();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

#[tokio::test]
async fn executors_serve_task_types_like_handlers_and_get_cancelled() {
    let mut server = FakeServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let body = format!("echo $$ > '{}/pid'\nexec sleep 600", dir.path().display());
    std::fs::write(dir.path().join("sleep.sh"), body).expect("write");
    let sleeper =
        ProcessExecutor::builder("sh").arg(dir.path().join("sleep.sh").to_string_lossy()).build().expect("ok");
    let running = Running::start(server.builder().executor("mirror", Mirror).executor("sleeper", sleeper));
    let mut stream = server.accept().await;
    let hello = stream.handshake(HOUR, 2 * HOUR).await;
    assert_eq!(hello.task_types, ["mirror", "sleeper"]);

    stream.assign(assignment("m", "mirror", &envelope(json!({"x": 1}))));
    let result = stream.result().await;
    assert_eq!(output(&result), json!({"input": {"x": 1}, "task": "m", "attempt": 1, "deps": {"up": {"y": 2}}}));
    stream.ack(&result, true, 0, "");

    let long = assignment("s", "sleeper", &envelope(Value::Null));
    stream.assign(long.clone());
    let pid = pid_in(&dir.path().join("pid")).await;
    stream.send(In::Cancel(CancelTask {
        task_id: long.task_id.clone(),
        attempt: long.attempt,
        lease_id: long.lease_id.clone(),
        reason: "run cancelled".to_owned(),
    }));
    let result = stream.result().await;
    let err = error(&result);
    assert!(err.retryable && err.r#type == "cancelled" && err.message.contains("run cancelled"), "{err:?}");
    let probe = std::process::Command::new("kill").args(["-0", &pid]).output().expect("kill -0");
    assert!(!probe.status.success(), "the cancelled process {pid} is still there");
    stream.ack(&result, true, 0, "");
    running.handle.shutdown();
    assert!(matches!(stream.recv_skipping_heartbeats().await, Some(Out::Drain(_))));
    assert!(stream.recv_skipping_heartbeats().await.is_none());
    running.finished().await.expect("clean stop");
}

/// An HTTP service on 127.0.0.1:0: `/thumb` answers `{"thumb": <input.w>}`, `/broken` 400.
async fn http_service() -> String {
    let app = Router::new()
        .route(
            "/thumb",
            post(|axum::Json(doc): axum::Json<Value>| async move { axum::Json(json!({"thumb": doc["input"]["w"]})) }),
        )
        .route("/broken", post(|| async { (axum::http::StatusCode::BAD_REQUEST, "no such picture") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn braid_worker_serves_a_config_file() {
    let mut server = FakeServer::start().await;
    let base = http_service().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("report.sh"),
        "#!/bin/sh\nprintf '{\"report\": %s, \"attempt\": %s}' \"$(cat)\" \"$BRAID_ATTEMPT\"\n",
    )
    .expect("write");
    let config = dir.path().join("worker.toml");
    let text = format!(
        "name = \"gw-1\"\nslots = 2\n\n[[task]]\ntype = \"thumb\"\nexecutor = \"http\"\nurl = \"{base}/thumb\"\ntimeout = \"10s\"\n\n\
         [[task]]\ntype = \"broken\"\nexecutor = \"http\"\nurl = \"{base}/broken\"\n\n\
         [[task]]\ntype = \"report\"\nexecutor = \"process\"\ncommand = [\"sh\", \"report.sh\"]\ntimeout = \"1m\"\n"
    );
    std::fs::write(&config, text).expect("write config");

    let check = tokio::process::Command::new(env!("CARGO_BIN_EXE_braid-worker"))
        .arg("--check")
        .arg("--config")
        .arg(&config)
        .output()
        .await
        .expect("run --check");
    let printed = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{printed}{}", String::from_utf8_lossy(&check.stderr));
    assert!(printed.contains("3 task type(s)") && printed.contains("thumb\thttp\tPOST http://"), "{printed}");
    assert!(printed.contains("report\tprocess\tsh report.sh"), "{printed}");

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_braid-worker"))
        .arg("--config")
        .arg(&config)
        .args(["--control-plane", &server.endpoint])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn braid-worker");
    let mut stream = server.accept().await;
    let hello = stream.handshake(HOUR, 2 * HOUR).await;
    assert_eq!((hello.worker_name.as_str(), hello.slots), ("gw-1", 2));
    assert_eq!(hello.task_types, ["broken", "report", "thumb"]);
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = within("the readiness line", stdout.next_line()).await.expect("read stdout");
    assert_eq!(line.as_deref(), Some("worker gw-1 connected"));

    stream.assign(assignment("t", "thumb", &envelope(json!({"w": 64}))));
    let result = stream.result().await;
    assert_eq!(output(&result), json!({"thumb": 64}));
    stream.ack(&result, true, 0, "");
    stream.assign(assignment("r", "report", &envelope(json!({"q": 1}))));
    let result = stream.result().await;
    assert_eq!(output(&result), json!({"report": {"input": {"q": 1}, "deps": {"up": {"y": 2}}}, "attempt": 1}));
    stream.ack(&result, true, 0, "");
    stream.assign(assignment("b", "broken", &envelope(Value::Null)));
    let result = stream.result().await;
    let err = error(&result);
    assert!(!err.retryable && err.r#type == "http_status" && err.message.contains("no such picture"), "{err:?}");
    stream.ack(&result, true, 0, "");

    let pid = child.id().expect("pid").to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    assert!(matches!(stream.recv_skipping_heartbeats().await, Some(Out::Drain(_))));
    assert!(stream.recv_skipping_heartbeats().await.is_none());
    let status = within("the process to exit", child.wait()).await.expect("wait");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn a_bad_config_file_is_refused_with_the_key_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("worker.toml");
    for (text, expected) in [
        ("[[task]]\ntype = \"a\"\nexecutor = \"http\"\nurl = \"http://x\"\nretries = 3\n", "unknown field `retries`"),
        ("[[task]]\ntype = \"a\"\nexecutor = \"http\"\nurl = \"ftp://x\"\n", "task 1 (\"a\"): invalid URL"),
        ("[[task]]\ntype = \"a!\"\nexecutor = \"process\"\ncommand = [\"true\"]\n", "invalid task type \"a!\""),
        ("name = \"x\"\n", "no [[task]] tables"),
    ] {
        std::fs::write(&config, text).expect("write");
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_braid-worker"))
            .arg("--config")
            .arg(&config)
            .arg("--check")
            .output()
            .await
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}: {stderr}");
        assert!(stderr.contains(expected) && !stderr.contains("panicked"), "{text}: {stderr}");
    }
}
