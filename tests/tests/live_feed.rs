//! The live feed end to end: SSE per run and for all runs with `Last-Event-ID` resume, and `braid run watch` exit codes, against `braid server` and an example worker.

use braid_e2e::cluster::Cluster;
use braid_e2e::{braid, stderr, stdout};
use braid_proto::v1 as pb;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const DEADLINE: Duration = Duration::from_secs(45);

/// Three sleeping tasks in a row: the run takes over a second.
const CHAIN: &str = "name: chain\ntasks:\n  - {name: a, task_type: sleep}\n  - {name: b, task_type: sleep, depends_on: [a]}\n  - {name: c, task_type: sleep, depends_on: [b]}\n";
const OTHER: &str = "name: other\ntasks:\n  - {name: x, task_type: sleep}\n";

/// One Server-Sent Event.
#[derive(Debug, Clone)]
struct SseEvent {
    id: String,
    kind: String,
    data: Value,
}

/// A response of the HTTP port read by hand: HTTP/1.0, so the body ends when the server closes.
struct Response {
    status: u16,
    body: BufReader<TcpStream>,
}

async fn get(addr: SocketAddr, path: &str, last_event_id: Option<&str>) -> Response {
    let mut tcp = TcpStream::connect(addr).await.expect("connect to the HTTP port");
    let resume = last_event_id.map(|id| format!("Last-Event-ID: {id}\r\n")).unwrap_or_default();
    let req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{resume}\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut body = BufReader::new(tcp);
    let mut status_line = String::new();
    body.read_line(&mut status_line).await.unwrap();
    let status = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    loop {
        let mut header = String::new();
        body.read_line(&mut header).await.unwrap();
        assert!(!header.to_ascii_lowercase().starts_with("transfer-encoding"), "HTTP/1.0 bodies are not chunked");
        if header.trim().is_empty() {
            break;
        }
    }
    Response { status, body }
}

impl Response {
    async fn text(mut self) -> String {
        let mut s = String::new();
        self.body.read_to_string(&mut s).await.unwrap();
        s
    }

    /// The next event, skipping keep-alive comments; `None` when the server ended the stream.
    async fn next(&mut self) -> Option<SseEvent> {
        let (mut id, mut kind, mut data) = (String::new(), String::new(), String::new());
        let read = async {
            loop {
                let mut line = String::new();
                if self.body.read_line(&mut line).await.unwrap() == 0 {
                    return None;
                }
                let line = line.trim_end_matches(['\r', '\n']);
                if line.is_empty() {
                    if data.is_empty() {
                        continue;
                    }
                    let data = serde_json::from_str(&data).expect("data is JSON");
                    return Some(SseEvent { id: id.clone(), kind: kind.clone(), data });
                }
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("event:") {
                    kind = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
        };
        tokio::time::timeout(DEADLINE, read).await.expect("an event or the end of the stream in time")
    }
}

/// The run's whole log over WatchRun (it ends when the run is terminal).
async fn watch_log(c: &Cluster, id: &str) -> Vec<pb::RunEvent> {
    let mut runs = pb::run_service_client::RunServiceClient::new(c.server.channel().await);
    let mut stream =
        runs.watch_run(pb::WatchRunRequest { run_id: id.into(), after_sequence: 0 }).await.unwrap().into_inner();
    let mut log = Vec::new();
    while let Some(m) = tokio::time::timeout(DEADLINE, stream.message()).await.expect("WatchRun in time").unwrap() {
        log.push(m.event.unwrap());
    }
    log
}

fn sequences(events: &[SseEvent]) -> Vec<u64> {
    events.iter().map(|e| e.data["sequence"].as_u64().unwrap()).collect()
}

/// The union of what the feed delivered is the run's log exactly: every event once, in order.
fn assert_is_the_log(got: &[SseEvent], log: &[pb::RunEvent]) {
    assert_eq!(sequences(got), (1..=log.len() as u64).collect::<Vec<_>>(), "every sequence once, in order");
    let kinds: Vec<&str> = got.iter().map(|e| e.kind.as_str()).collect();
    let log_kinds: Vec<&str> = log.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, log_kinds);
    for e in got {
        assert_eq!(e.data["kind"], e.kind.as_str());
    }
    assert_eq!(got.last().unwrap().kind, "run_succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_feed_resumes_with_last_event_id_and_ends_with_the_run() {
    let c = Cluster::start().await;
    let _w = c.worker("w", 2, "sleep", &[]);
    c.apply(CHAIN);
    let id = c.trigger("chain", json!({"ms": 400})).await;
    let path = format!("/v1/runs/{id}/events");

    let mut first = get(c.server.http, &path, None).await;
    assert_eq!(first.status, 200);
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(first.next().await.expect("an event"));
    }
    assert_eq!(got.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["1", "2", "3"], "the SSE id is the sequence");
    assert!(got.iter().all(|e| !e.kind.starts_with("run_succeeded")), "dropped mid-run: {got:?}");
    drop(first);

    let last = got.last().unwrap().id.clone();
    let mut second = get(c.server.http, &path, Some(&last)).await;
    assert_eq!(second.status, 200);
    while let Some(e) = second.next().await {
        got.push(e);
    }
    let log = watch_log(&c, &id).await;
    assert_is_the_log(&got, &log);
    assert_eq!(got[0].data["run_id"], id.as_str());

    // `?after=` resumes the same way; a finished run's feed ends after its last event.
    let mut after = get(c.server.http, &format!("{path}?after={}", log.len() - 2), None).await;
    let (e1, e2) = (after.next().await.unwrap(), after.next().await.unwrap());
    assert_eq!(sequences(&[e1, e2]), [log.len() as u64 - 1, log.len() as u64]);
    assert!(after.next().await.is_none(), "the feed of a finished run ends");

    let unknown = get(c.server.http, &format!("/v1/runs/{}/events", uuid::Uuid::now_v7()), None).await;
    assert_eq!(unknown.status, 404);
    let body: Value = serde_json::from_str(&unknown.text().await).expect("a JSON error");
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    let malformed = get(c.server.http, "/v1/runs/not-a-run/events", None).await;
    assert_eq!(malformed.status, 400);
    let body: Value = serde_json::from_str(&malformed.text().await).expect("a JSON error");
    assert_eq!(body["error"]["code"], "invalid_argument", "{body}");
    let bad_resume = get(c.server.http, &path, Some("x")).await;
    assert_eq!(bad_resume.status, 400);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_all_runs_feed_filters_by_workflow_and_resumes_with_last_event_id() {
    let c = Cluster::start().await;
    let _w = c.worker("w", 4, "sleep", &[]);
    c.apply(CHAIN);
    c.apply(OTHER);
    let path = "/v1/events?workflow=chain";
    // Opened before the runs exist: it starts from now.
    let mut first = get(c.server.http, path, None).await;
    assert_eq!(first.status, 200);
    let id = c.trigger("chain", json!({"ms": 400})).await;
    let other = c.trigger("other", json!({"ms": 10})).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(first.next().await.expect("an event"));
    }
    drop(first);

    let last = got.last().unwrap().id.clone();
    let mut second = get(c.server.http, path, Some(&last)).await;
    assert_eq!(second.status, 200);
    while got.last().unwrap().kind != "run_succeeded" {
        got.push(second.next().await.expect("the feed goes on"));
    }
    drop(second);
    let ids: Vec<u64> = got.iter().map(|e| e.id.parse().expect("a global event id")).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "increasing global ids: {ids:?}");
    assert!(got.iter().all(|e| e.data["run_id"] == id.as_str()), "only the chain run, not {other}: {got:?}");
    let log = watch_log(&c, &id).await;
    assert_is_the_log(&got, &log);

    // An open feed does not hold up shutdown: it ends when the server stops.
    let mut open = get(c.server.http, "/v1/events", None).await;
    assert_eq!(open.status, 200);
    c.stop().await;
    assert!(open.next().await.is_none(), "the feed ended with the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn braid_run_watch_exits_with_the_run_outcome() {
    let c = Cluster::start().await;
    let _w = c.worker("w", 2, "sleep,fail", &[]);
    c.apply(CHAIN);
    c.apply("name: doomed\ntasks:\n  - {name: f, task_type: fail, retry: {max_attempts: 1}}\n");
    let endpoint = c.server.endpoint();

    let ok = c.trigger("chain", json!({"ms": 200})).await;
    let (e1, o1) = (endpoint.clone(), ok.clone());
    let out = tokio::task::spawn_blocking(move || braid(&["run", "watch", o1.as_str(), "--endpoint", e1.as_str()]))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    for line in ["run_created", "task_leased", "task_succeeded", "run_succeeded"] {
        assert!(text.contains(line), "{line} printed:\n{text}");
    }
    assert!(text.contains("state     succeeded"), "the final state printed:\n{text}");

    let bad = c.trigger("doomed", json!({"always": true})).await;
    let (e2, b2) = (endpoint.clone(), bad.clone());
    let out = tokio::task::spawn_blocking(move || {
        braid(&["run", "watch", b2.as_str(), "--endpoint", e2.as_str(), "--output", "json"])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}\n{}", stdout(&out), stderr(&out));
    let lines: Vec<Value> =
        stdout(&out).lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    let (run, events) = lines.split_last().unwrap();
    assert_eq!(run["run"]["state"], "failed", "{run}");
    assert_eq!(events.last().unwrap()["kind"], "run_failed");
    assert!(events.iter().any(|e| e["kind"] == "task_failed" && e["task_name"] == "f"), "{events:?}");
    let seqs: Vec<u64> = events.iter().map(|e| e["sequence"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    c.stop().await;
}
