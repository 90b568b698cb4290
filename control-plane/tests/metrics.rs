//! What the engine records on `/metrics` and the collector's grouped queries, on SQLite and PostgreSQL.

mod common;

use braid_control_plane::domain::records::{RunDetail, TaskError};
use braid_control_plane::domain::state::TaskState;
use braid_control_plane::engine::complete::{Outcome, Verdict};
use braid_control_plane::engine::dead_letters::PurgeSelection;
use braid_control_plane::engine::dispatch::Assignment;
use braid_control_plane::engine::trigger::TriggerRequest;
use braid_control_plane::store::dead_letters::DeadLetterFilter;
use braid_control_plane::store::gauges;
use common::{TestDb, tenant, yaml};
use uuid::Uuid;

const CHAIN: &str =
    "name: chain\ntasks:\n  - {name: a, task_type: qa}\n  - {name: b, task_type: qa, depends_on: [a]}\n";
const DOOMED: &str = "name: doomed\ntasks:\n  - {name: x, task_type: qb, retry: {max_attempts: 1}}\n  - {name: y, task_type: qb, depends_on: [x]}\n";

async fn start(db: &TestDb, def: &str) -> Uuid {
    db.engine.put_workflow(&tenant(), &yaml(def)).await.unwrap();
    let name = def.lines().next().unwrap().trim_start_matches("name: ").to_owned();
    let req = TriggerRequest { workflow_name: name, input_json: "{}".into(), ..TriggerRequest::default() };
    db.engine.trigger_run(&tenant(), &req).await.unwrap().run.run.id
}

async fn run(db: &TestDb, id: Uuid) -> RunDetail {
    db.engine.get_run(&tenant(), id).await.unwrap()
}

async fn lease_ready(db: &TestDb, id: Uuid) -> Vec<Assignment> {
    let ready: Vec<Uuid> =
        run(db, id).await.tasks.iter().filter(|t| t.state == TaskState::Ready).map(|t| t.id).collect();
    db.engine.lease(&tenant(), "w1", &ready).await.unwrap()
}

/// The value of the series `series` (name and labels exactly as rendered), or None.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

fn expect(text: &str, series: &str, want: f64) {
    assert_eq!(value(text, series), Some(want), "{series} in:\n{text}");
}

async fn recorded_and_collected(db: &TestDb) {
    let e = &db.engine;
    let runs = [start(db, CHAIN).await, start(db, CHAIN).await];

    // The collector query: two due ready tasks of type qa; none due an hour ago.
    let now = chrono::Utc::now();
    let rows = gauges::ready_queues(db.store.conn(), now).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].tenant.as_str(), rows[0].task_type.as_str(), rows[0].depth), ("default", "qa", 2));
    assert!(rows[0].oldest <= now);
    assert!(gauges::ready_queues(db.store.conn(), now - chrono::Duration::hours(1)).await.unwrap().is_empty());
    e.collect_gauges().await.unwrap();
    let text = e.metrics().render();
    expect(&text, r#"braid_queue_depth{task_type="qa"}"#, 2.0);
    assert!(value(&text, r#"braid_queue_lag_seconds{task_type="qa"}"#).unwrap() >= 0.0, "{text}");
    expect(&text, r#"braid_runs_started_total{workflow="chain"}"#, 2.0);

    // Lease and finish one run; the other's first task stays leased.
    let first: Vec<Assignment> = [lease_ready(db, runs[0]).await, lease_ready(db, runs[1]).await].concat();
    assert_eq!(first.len(), 2);
    let ok = || Outcome::Succeeded { output_json: "{}".into() };
    assert_eq!(e.complete(&tenant(), first[0].key, ok()).await.unwrap(), Verdict::Accepted);
    let second = lease_ready(db, runs[0]).await;
    e.complete(&tenant(), second[0].key, ok()).await.unwrap();
    // The same result again is accepted (a resend); an old lease's result is stale.
    let mut old = second[0].key;
    old.lease_id = Uuid::now_v7();
    assert!(matches!(e.complete(&tenant(), old, ok()).await.unwrap(), Verdict::Stale { .. }));

    // A run that fails for good: its first task is dead-lettered, the second skipped.
    let doomed = start(db, DOOMED).await;
    let x = lease_ready(db, doomed).await;
    let boom = TaskError { message: "boom".into(), kind: "injected".into(), retryable: true, details: None };
    e.complete(&tenant(), x[0].key, Outcome::Failed(boom)).await.unwrap();

    e.collect_gauges().await.unwrap();
    let text = e.metrics().render();
    expect(&text, r#"braid_queue_depth{task_type="qa"}"#, 0.0);
    expect(&text, r#"braid_queue_lag_seconds{task_type="qa"}"#, 0.0);
    expect(&text, r#"braid_runs_finished_total{outcome="succeeded",workflow="chain"}"#, 1.0);
    expect(&text, r#"braid_runs_finished_total{outcome="failed",workflow="doomed"}"#, 1.0);
    expect(&text, r#"braid_tasks_finished_total{outcome="succeeded",task_type="qa"}"#, 2.0);
    expect(&text, r#"braid_tasks_finished_total{outcome="failed",task_type="qb"}"#, 1.0);
    expect(&text, r#"braid_tasks_finished_total{outcome="skipped",task_type="qb"}"#, 1.0);
    expect(&text, r#"braid_task_attempts_total{outcome="succeeded",task_type="qa"}"#, 2.0);
    expect(&text, r#"braid_task_attempts_total{outcome="failed",task_type="qb"}"#, 1.0);
    expect(&text, r#"braid_task_schedule_to_start_seconds_count{task_type="qa"}"#, 3.0);
    expect(&text, r#"braid_task_execution_seconds_count{task_type="qa"}"#, 2.0);
    expect(&text, r#"braid_dead_letters_total{error_type="injected",workflow="doomed"}"#, 1.0);
    expect(&text, r#"braid_dead_letters{workflow="doomed"}"#, 1.0);
    expect(&text, "braid_stale_results_total", 1.0);

    // Cancelling the run still holding a lease: the run and its open tasks count as cancelled.
    e.cancel_run(&tenant(), runs[1], "").await.unwrap();
    let text = e.metrics().render();
    expect(&text, r#"braid_runs_finished_total{outcome="cancelled",workflow="chain"}"#, 1.0);
    expect(&text, r#"braid_tasks_finished_total{outcome="cancelled",task_type="qa"}"#, 2.0);

    // Purged dead letters leave the gauge.
    let all = PurgeSelection::Filter(DeadLetterFilter::default());
    assert_eq!(e.purge_dead_letters(&tenant(), &all).await.unwrap(), 1);
    e.collect_gauges().await.unwrap();
    expect(&e.metrics().render(), r#"braid_dead_letters{workflow="doomed"}"#, 0.0);
}
on_both_backends!(the_engine_records_and_the_collector_counts, recorded_and_collected);
