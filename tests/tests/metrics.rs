//! `/metrics` of a real `braid server` with an example worker: after a run that succeeds and one
//! that dead-letters, every `braid_*` family is exported with sensible values; the worker's own
//! `/metrics` counts what it handled.

use braid_e2e::MetricsWorker;
use braid_e2e::cluster::Cluster;
use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long the server's gauges (collected every 5 s) and counters may take to show a run.
const SCRAPE_DEADLINE: Duration = Duration::from_secs(30);

/// `GET http://addr/metrics`, the body.
fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to /metrics");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: braid\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default()
}

/// The value of the series `series` (name and labels exactly as rendered).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Scrapes until every `(series, at least)` holds; fails with the last scrape after the deadline.
fn scrape_until(addr: SocketAddr, wants: &[(&str, f64)]) -> String {
    let until = Instant::now() + SCRAPE_DEADLINE;
    loop {
        let text = scrape(addr);
        let missing: Vec<_> = wants.iter().filter(|(s, min)| value(&text, s).is_none_or(|v| v < *min)).collect();
        if missing.is_empty() {
            return text;
        }
        assert!(Instant::now() < until, "after {SCRAPE_DEADLINE:?} still missing {missing:?} in:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_is_exported_with_sensible_values() {
    let c = Cluster::start().await;
    let w = MetricsWorker::start(&c.server.endpoint(), "mw", 4, "echo,fail");
    c.apply("name: m_ok\ntasks:\n  - {name: a, task_type: echo}\n  - {name: b, task_type: echo, depends_on: [a]}\n");
    c.apply("name: m_dead\ntasks:\n  - {name: f, task_type: fail, retry: {max_attempts: 2, initial_backoff: 10ms, jitter: false}}\n");
    let ok = c.trigger("m_ok", json!({"x": 1})).await;
    let dead = c.trigger("m_dead", json!({"always": true})).await;
    assert_eq!(c.finish(&ok).await.state, braid_proto::v1::RunState::Succeeded as i32);
    assert_eq!(c.finish(&dead).await.state, braid_proto::v1::RunState::Failed as i32);

    let text = scrape_until(
        c.server.http,
        &[
            (r#"braid_runs_started_total{workflow="m_ok"}"#, 1.0),
            (r#"braid_runs_finished_total{outcome="succeeded",workflow="m_ok"}"#, 1.0),
            (r#"braid_runs_finished_total{outcome="failed",workflow="m_dead"}"#, 1.0),
            (r#"braid_tasks_finished_total{outcome="succeeded",task_type="echo"}"#, 2.0),
            (r#"braid_tasks_finished_total{outcome="failed",task_type="fail"}"#, 1.0),
            (r#"braid_task_attempts_total{outcome="succeeded",task_type="echo"}"#, 2.0),
            (r#"braid_task_attempts_total{outcome="failed",task_type="fail"}"#, 2.0),
            (r#"braid_task_schedule_to_start_seconds_count{task_type="echo"}"#, 2.0),
            (r#"braid_task_schedule_to_start_seconds_bucket{task_type="echo",le="1"}"#, 1.0),
            (r#"braid_task_execution_seconds_count{task_type="echo"}"#, 2.0),
            (r#"braid_task_retries_total{task_type="fail"}"#, 1.0),
            (r#"braid_leases_expired_total{task_type="echo"}"#, 0.0),
            ("braid_stale_results_total", 0.0),
            (r#"braid_dead_letters_total{error_type="injected",workflow="m_dead"}"#, 1.0),
            (r#"braid_dead_letters{workflow="m_dead"}"#, 1.0),
            (r#"braid_queue_depth{task_type="echo"}"#, 0.0),
            (r#"braid_queue_lag_seconds{task_type="echo"}"#, 0.0),
            ("braid_reconciler_republished_total", 0.0),
            (r#"braid_cron_ticks_total{outcome="fired"}"#, 0.0),
            ("braid_workers_connected", 1.0),
            (r#"braid_worker_slots{state="free",task_type="echo"}"#, 1.0),
            (r#"braid_worker_slots{state="used",task_type="fail"}"#, 0.0),
            ("braid_worker_heartbeats_total", 1.0),
            (r#"braid_grpc_requests_total{code="OK",method="TriggerRun",service="braid.v1.RunService"}"#, 2.0),
            (r#"braid_grpc_requests_total{code="OK",method="Connect",service="braid.v1.WorkerService"}"#, 1.0),
            (r#"braid_grpc_request_duration_seconds_count{method="TriggerRun",service="braid.v1.RunService"}"#, 2.0),
            (r#"braid_retention_deleted_total{kind="runs"}"#, 0.0),
        ],
    );
    assert!(text.contains("braid_build_info{version="), "{text}");
    // A bad request is counted under its code.
    let mut runs = braid_proto::v1::run_service_client::RunServiceClient::new(c.server.channel().await);
    let err = runs.get_run(braid_proto::v1::GetRunRequest { run_id: "not-a-uuid".into() }).await.unwrap_err();
    let series = format!(
        r#"braid_grpc_requests_total{{code="{}",method="GetRun",service="braid.v1.RunService"}}"#,
        code_name(err.code())
    );
    scrape_until(c.server.http, &[(series.as_str(), 1.0)]);
    // No run or task ids in any label.
    for id in [&ok, &dead] {
        assert!(!scrape(c.server.http).contains(id.as_str()), "run id {id} in a label");
    }

    // The worker's own metrics.
    scrape_until(
        w.metrics,
        &[
            (r#"braid_worker_tasks_total{outcome="succeeded",task_type="echo"}"#, 2.0),
            (r#"braid_worker_tasks_total{outcome="failed",task_type="fail"}"#, 2.0),
            (r#"braid_worker_handler_duration_seconds_count{task_type="echo"}"#, 2.0),
            ("braid_worker_heartbeats_sent_total", 1.0),
        ],
    );
    drop(w);
    c.stop().await;
}

fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::NotFound => "NOT_FOUND",
        other => panic!("unexpected code {other:?}"),
    }
}
