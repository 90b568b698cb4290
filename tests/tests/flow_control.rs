//! Run concurrency limits and priorities through real `braid server` processes, PostgreSQL, Redis and example workers.

use braid_e2e::cluster::Cluster;
use braid_e2e::ledger_lines;
use braid_proto::v1 as pb;
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;

fn request(workflow: &str, ms: u64, key: &str) -> pb::TriggerRunRequest {
    pb::TriggerRunRequest {
        workflow_name: workflow.into(),
        input_json: json!({"ms": ms}).to_string(),
        concurrency_key: key.into(),
        ..Default::default()
    }
}

/// `(start, finish)` instants per task id from a worker's ledger (microsecond RFC 3339 text sorts by time).
fn intervals(ledger: &Path) -> HashMap<String, (String, String)> {
    let mut out: HashMap<String, (String, String)> = HashMap::new();
    for line in ledger_lines(ledger) {
        let id = line["task_id"].as_str().unwrap_or_default().to_owned();
        let ts = line["ts"].as_str().unwrap_or_default().to_owned();
        match line["event"].as_str() {
            Some("start") => out.entry(id).or_default().0 = ts,
            Some("finish") => out.entry(id).or_default().1 = ts,
            _ => {}
        }
    }
    out
}

/// The most intervals open at once among `ids`.
fn peak(all: &HashMap<String, (String, String)>, ids: &[String]) -> usize {
    let mut edges: Vec<(&str, i32)> = Vec::new();
    for id in ids {
        let (s, f) = &all[id];
        edges.push((s, 1));
        edges.push((f, -1));
    }
    // At equal instants, ends first.
    edges.sort();
    let (mut open, mut most) = (0, 0);
    for (_, d) in edges {
        open += d;
        most = most.max(open);
    }
    usize::try_from(most).unwrap_or(0)
}

fn task_id(run: &pb::Run) -> String {
    run.tasks[0].id.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn max_concurrent_runs_two_of_twenty_in_fifo_order() {
    let c = Cluster::start().await;
    let _w = c.worker("w", 8, "sleep", &[]);
    c.apply("name: limited\nsettings: {max_concurrent_runs: 2}\ntasks:\n  - {name: s, task_type: sleep}\n");
    let mut runs = Vec::new();
    for _ in 0..20 {
        runs.push(c.trigger_on(&c.server, request("limited", 100, "")).await);
    }
    assert_eq!(runs[0].state, pb::RunState::Running as i32);
    let queued = runs.iter().find(|r| r.state == pb::RunState::Queued as i32).expect("some runs must queue");
    assert!(queued.reason.contains("max_concurrent_runs 2"), "a queued run says why it waits: {:?}", queued.reason);
    let got = c.get(&queued.id).await;
    assert!(
        got.reason.contains("max_concurrent_runs 2") || got.state != pb::RunState::Queued as i32,
        "GetRun: {got:?}"
    );
    let mut finished = Vec::new();
    for r in &runs {
        let done = c.finish(&r.id).await;
        assert_eq!(done.state, pb::RunState::Succeeded as i32, "{done:?}");
        finished.push(done);
    }
    let all = intervals(&c.ledger("w"));
    let ids: Vec<String> = finished.iter().map(task_id).collect();
    assert_eq!(peak(&all, &ids), 2, "at most (and, with 8 free slots, exactly) 2 runs at once");
    // FIFO: runs start in the order they were triggered.
    let starts: Vec<&String> = ids.iter().map(|id| &all[id].0).collect();
    for (i, pair) in starts.windows(2).enumerate() {
        assert!(pair[0] <= pair[1], "run {} started after run {}: {starts:?}", i, i + 1);
    }
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_newest_and_cancel_in_progress() {
    let c = Cluster::start().await;
    let _w = c.worker("w", 8, "sleep", &[]);
    c.apply("name: newest\nsettings: {max_concurrent_runs: 2, concurrency_policy: cancel_newest}\ntasks:\n  - {name: s, task_type: sleep}\n");
    c.apply("name: inprog\nsettings: {max_concurrent_runs: 1, concurrency_policy: cancel_in_progress}\ntasks:\n  - {name: s, task_type: sleep}\n");
    let mut newest = Vec::new();
    for _ in 0..5 {
        newest.push(c.trigger_on(&c.server, request("newest", 400, "")).await);
    }
    let states: Vec<i32> = newest.iter().map(|r| r.state).collect();
    assert_eq!(&states[..2], &[pb::RunState::Running as i32; 2], "{newest:?}");
    for r in &newest[2..] {
        assert_eq!(r.state, pb::RunState::Cancelled as i32, "{r:?}");
        assert!(r.reason.contains("cancel_newest"), "{:?}", r.reason);
    }
    for r in &newest[..2] {
        assert_eq!(c.finish(&r.id).await.state, pb::RunState::Succeeded as i32);
    }

    let old = c.trigger_on(&c.server, request("inprog", 20_000, "")).await;
    assert_eq!(old.state, pb::RunState::Running as i32);
    let new = c.trigger_on(&c.server, request("inprog", 50, "")).await;
    let old = c.finish(&old.id).await;
    assert_eq!(old.state, pb::RunState::Cancelled as i32, "{old:?}");
    assert!(old.reason.contains("to make room"), "{:?}", old.reason);
    assert_eq!(c.finish(&new.id).await.state, pb::RunState::Succeeded as i32);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn max_per_key_holds_across_two_control_planes() {
    let c = Cluster::start().await;
    let peer = c.peer();
    let _w1 = c.worker("w1", 8, "sleep", &[]);
    let _w2 = braid_e2e::ExampleWorker::start(&peer.endpoint(), "w2", 8, "sleep", &c.ledger("w2"), &[]);
    c.apply("name: keyed\nsettings: {max_per_key: 1}\ntasks:\n  - {name: s, task_type: sleep}\n");
    let mut by_key: HashMap<&str, Vec<pb::Run>> = HashMap::new();
    for i in 0..12 {
        let key = if i % 3 == 0 { "small" } else { "big" };
        let server = if i % 2 == 0 { &c.server } else { &peer };
        by_key.entry(key).or_default().push(c.trigger_on(server, request("keyed", 150, key)).await);
    }
    let mut all = intervals(&c.ledger("w1"));
    let mut ids: HashMap<&str, Vec<String>> = HashMap::new();
    for (key, runs) in &by_key {
        for r in runs {
            let done = c.finish(&r.id).await;
            assert_eq!(done.state, pb::RunState::Succeeded as i32, "{done:?}");
            ids.entry(key).or_default().push(task_id(&done));
        }
    }
    all.extend(intervals(&c.ledger("w1")));
    all.extend(intervals(&c.ledger("w2")));
    for (key, ids) in &ids {
        assert_eq!(peak(&all, ids), 1, "key {key}: at most one run at once across both control planes");
    }
    // The small key is not starved by the big one's backlog: its first run starts before the big key's last.
    let first_small = ids["small"].iter().map(|id| &all[id].0).min().unwrap();
    let last_big = ids["big"].iter().map(|id| &all[id].0).max().unwrap();
    assert!(first_small < last_big, "small key waited for the whole big backlog");
    drop(peer);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn high_priority_tasks_start_before_a_low_priority_backlog() {
    let c = Cluster::start().await;
    c.apply("name: prio\ntasks:\n  - {name: s, task_type: sleep}\n");
    let with = |priority: pb::Priority| pb::TriggerRunRequest { priority: priority as i32, ..request("prio", 5, "") };
    let mut low = Vec::new();
    for _ in 0..30 {
        low.push(c.trigger_on(&c.server, with(pb::Priority::Low)).await);
    }
    let mut high = Vec::new();
    for _ in 0..5 {
        high.push(c.trigger_on(&c.server, with(pb::Priority::High)).await);
    }
    assert_eq!(high[0].priority, pb::Priority::High as i32, "GetRun shows the priority");
    // ListQueues sees the backlog, whatever its lanes, and that nobody serves it yet.
    let mut admin = pb::admin_service_client::AdminServiceClient::new(c.server.channel().await);
    let queues = admin.list_queues(pb::ListQueuesRequest::default()).await.unwrap().into_inner().queues;
    let sleep = queues.iter().find(|q| q.task_type == "sleep").expect("a sleep queue");
    assert_eq!((sleep.ready, sleep.leased, sleep.workers), (35, 0, 0), "{sleep:?}");
    assert!(sleep.lag.is_some_and(|l| l.seconds > 0 || l.nanos > 0), "{sleep:?}");
    // The backlog is in the queue before any worker can take from it.
    let _w = c.worker("w", 1, "sleep", &[]);
    for r in low.iter().chain(&high) {
        assert_eq!(c.finish(&r.id).await.state, pb::RunState::Succeeded as i32);
    }
    let mut starts: Vec<(String, String)> = intervals(&c.ledger("w")).into_iter().map(|(id, (s, _))| (s, id)).collect();
    starts.sort();
    let high_ids: Vec<String> = high.iter().map(task_id).collect();
    let first_five: Vec<&String> = starts.iter().take(5).map(|(_, id)| id).collect();
    for id in &first_five {
        assert!(high_ids.contains(id), "the first five tasks started must be the high-priority ones: {first_five:?}");
    }
    c.stop().await;
}
