//! A per-second cron schedule on two `braid server` processes sharing PostgreSQL and Redis,
//! with control planes killed (SIGKILL) and restarted: one run per nominal tick, none missing.

use braid_e2e::cluster::Cluster;
use braid_e2e::signal;
use braid_proto::v1 as pb;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds of ticks the schedule covers (its start to its end).
const TICKS: i64 = 30;
/// How long after the end every tick must have its run.
const SETTLE: Duration = Duration::from_secs(8);

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Sleeps until the wall clock reaches `at` (unix seconds): the outages are timed, not awaited.
async fn until(at: i64) {
    let left = at as f64 - unix_now();
    if left > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(left)).await;
    }
}

/// Runs of the schedule by nominal tick (unix seconds) → how many runs each tick has.
async fn runs_by_tick(c: &Cluster, schedule_id: &str) -> BTreeMap<i64, usize> {
    let mut api = pb::run_service_client::RunServiceClient::new(c.server.channel().await);
    let mut out = BTreeMap::new();
    let mut token = String::new();
    loop {
        let page = api
            .list_runs(pb::ListRunsRequest {
                workflow_name: "tick".into(),
                page: Some(pb::PageRequest { page_size: 500, page_token: token.clone() }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        for r in &page.runs {
            assert_eq!(r.schedule_id, schedule_id, "a run not made by the schedule: {r:?}");
            let at = r.scheduled_for.as_ref().expect("a scheduled run records its tick").seconds;
            *out.entry(at).or_insert(0) += 1;
        }
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_control_planes_fire_each_tick_once_through_kills() {
    let mut c = Cluster::start().await;
    let peer = c.peer();
    c.apply("name: tick\ntasks:\n  - {name: a, task_type: nobody-serves-this}\n");
    let start = unix_now().ceil() as i64 + 2;
    let end = start + TICKS;
    let mut s = pb::Schedule {
        name: "every-second".into(),
        workflow_name: "tick".into(),
        cron: "* * * * * *".into(),
        overlap_policy: pb::OverlapPolicy::AllowAll.into(),
        catchup_policy: pb::CatchupPolicy::All.into(),
        start_at: Some(Default::default()),
        end_at: Some(Default::default()),
        ..Default::default()
    };
    if let (Some(a), Some(b)) = (s.start_at.as_mut(), s.end_at.as_mut()) {
        a.seconds = start;
        b.seconds = end;
    }
    let mut api = pb::schedule_service_client::ScheduleServiceClient::new(c.server.channel().await);
    let created = api.create_schedule(pb::CreateScheduleRequest { schedule: Some(s) }).await.unwrap().into_inner();
    let id = created.schedule.unwrap().id;

    // 8 s in: the first control plane is killed and restarted while the peer goes on.
    until(start + 8).await;
    signal(c.server.pid(), "KILL");
    c.server = c.peer();
    // 16 s in: both are killed; 4 s without any control plane; one comes back and catches up.
    until(start + 16).await;
    signal(c.server.pid(), "KILL");
    signal(peer.pid(), "KILL");
    drop(peer);
    until(start + 20).await;
    c.server = c.peer();

    // Every tick of [start, end) gets exactly one run (catch-up `all` covers the outage).
    until(end).await;
    let deadline = tokio::time::Instant::now() + SETTLE;
    let by_tick = loop {
        let by_tick = runs_by_tick(&c, &id).await;
        if by_tick.len() as i64 >= TICKS || tokio::time::Instant::now() >= deadline {
            break by_tick;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let twice: Vec<_> = by_tick.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "ticks fired more than once: {twice:?}");
    let missing: Vec<i64> = (start..end).filter(|t| !by_tick.contains_key(t)).collect();
    assert!(missing.is_empty(), "ticks without a run: {missing:?} (start {start})");
    assert!(by_tick.keys().all(|t| (start..end).contains(t)), "ticks outside [start, end): {by_tick:?}");
    c.stop().await;
}
