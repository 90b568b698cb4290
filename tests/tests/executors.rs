//! `braid-worker` (the config-file worker) end to end: one task type served over HTTP, others by
//! a command, against `braid server` on PostgreSQL and Redis.

use braid_e2e::cluster::Cluster;
use braid_e2e::{ExampleWorker, worker_bin};
use braid_proto::v1 as pb;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;

/// The `braid-worker` binary: `BRAID_GENERIC_WORKER_BIN` (set by `scripts/test`), else the one
/// built next to `braid-example-worker`.
fn generic_worker_bin() -> PathBuf {
    let path = std::env::var_os("BRAID_GENERIC_WORKER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| worker_bin().with_file_name("braid-worker"));
    assert!(path.is_file(), "{} is not the built braid-worker; run the tests via scripts/test", path.display());
    path
}

/// A small HTTP/1.1 service on 127.0.0.1:0, one connection at a time (each closed after its
/// answer): `POST /thumb` answers `{"thumb": <input.w>, "attempt": <Braid-Attempt>}`, any other
/// path 422. Returns `http://ADDR`.
fn http_service() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            // A broken exchange fails the task under test, which the test then reports.
            let _ = answer(conn);
        }
    });
    format!("http://{addr}")
}

fn answer(mut conn: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let (mut length, mut attempt) = (0, String::new());
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "braid-attempt" => attempt = value.trim().to_owned(),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (status, text) = match request_line.split_whitespace().nth(1) {
        Some("/thumb") => ("200 OK", json!({"thumb": doc["input"]["w"], "attempt": attempt}).to_string()),
        _ => ("422 Unprocessable Entity", "no such picture".to_owned()),
    };
    write!(
        conn,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    )
}

fn task<'a>(run: &'a pb::Run, name: &str) -> &'a pb::Task {
    run.tasks.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no task {name}"))
}

fn output(t: &pb::Task) -> Value {
    serde_json::from_str(&t.output_json).unwrap_or(Value::Null)
}

fn outcomes(t: &pb::Task) -> Vec<&str> {
    t.attempts.iter().map(|a| a.outcome.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn braid_worker_serves_http_and_process_task_types_from_a_config_file() {
    let c = Cluster::start().await;
    let base = http_service();
    let dir = c.dir.path();
    // `report` wraps its whole input; `flaky` asks for a retry (EX_TEMPFAIL) on its first attempt.
    std::fs::write(dir.join("report.sh"), "#!/bin/sh\nprintf '{\"seen\": %s}' \"$(cat)\"\n").expect("write");
    std::fs::write(
        dir.join("flaky.sh"),
        "#!/bin/sh\ncat > /dev/null\nif [ \"$BRAID_ATTEMPT\" = 1 ]; then echo 'busy, later' >&2; exit 75; fi\necho '{\"ok\": true}'\n",
    )
    .expect("write");
    let config = dir.join("worker.toml");
    let text = format!(
        "name = \"gw\"\nslots = 2\n\n\
         [[task]]\ntype = \"thumb\"\nexecutor = \"http\"\nurl = \"{base}/thumb\"\ntimeout = \"10s\"\n\n\
         [[task]]\ntype = \"reject\"\nexecutor = \"http\"\nurl = \"{base}/reject\"\n\n\
         [[task]]\ntype = \"report\"\nexecutor = \"process\"\ncommand = [\"sh\", \"report.sh\"]\ntimeout = \"30s\"\n\n\
         [[task]]\ntype = \"flaky\"\nexecutor = \"process\"\ncommand = [\"sh\", \"flaky.sh\"]\nretryable_exit_codes = [75]\n"
    );
    std::fs::write(&config, text).expect("write config");
    let mut cmd = Command::new(generic_worker_bin());
    cmd.arg("--config").arg(&config).args(["--control-plane", &c.server.endpoint()]);
    let _worker = ExampleWorker::spawn(cmd, "gw", &c.ledger("gw"));

    // http, then a process that gets the http task's output.
    c.apply("name: pipeline\ntasks:\n  - {name: thumb, task_type: thumb}\n  - {name: report, task_type: report, depends_on: [thumb]}\n");
    let run = c.finish(&c.trigger("pipeline", json!({"w": 64})).await).await;
    assert_eq!(run.state, pb::RunState::Succeeded as i32, "{run:?}");
    assert_eq!(output(task(&run, "thumb")), json!({"thumb": 64, "attempt": "1"}));
    let seen = output(task(&run, "report"))["seen"].clone();
    assert_eq!(seen, json!({"input": {"w": 64}, "deps": {"thumb": {"thumb": 64, "attempt": "1"}}}));

    // 422: not retryable, dead-lettered after one attempt of three.
    c.apply("name: rejected\ntasks:\n  - {name: r, task_type: reject, retry: {max_attempts: 3, initial_backoff: 50ms, jitter: false}}\n");
    let run = c.finish(&c.trigger("rejected", json!({})).await).await;
    assert_eq!(run.state, pb::RunState::Failed as i32, "{run:?}");
    let r = task(&run, "r");
    assert_eq!((r.state, outcomes(r)), (pb::TaskState::Failed as i32, vec!["failed"]));
    let mut admin = pb::admin_service_client::AdminServiceClient::new(c.server.channel().await);
    let dls = admin.list_dead_letters(pb::ListDeadLettersRequest::default()).await.expect("list").into_inner();
    assert_eq!(dls.dead_letters.len(), 1, "{dls:?}");
    let last = dls.dead_letters[0].last_error.clone().expect("last error");
    assert_eq!((dls.dead_letters[0].attempts, last.r#type.as_str(), last.retryable), (1, "http_status", false));
    assert!(last.message.contains("422") && last.message.contains("no such picture"), "{last:?}");

    // Exit 75: retried, and the second attempt succeeds.
    c.apply("name: retried\ntasks:\n  - {name: f, task_type: flaky, retry: {max_attempts: 3, initial_backoff: 50ms, jitter: false}}\n");
    let run = c.finish(&c.trigger("retried", json!({})).await).await;
    assert_eq!(run.state, pb::RunState::Succeeded as i32, "{run:?}");
    let f = task(&run, "f");
    assert_eq!((outcomes(f), output(f)), (vec!["failed", "succeeded"], json!({"ok": true})));
    c.stop().await;
}
