//! Priority lanes through the engine: each priority is published on its lane, and the reconciler promotes tasks that waited past the aging threshold.

mod common;

use braid_control_plane::domain::flow::Priority;
use braid_control_plane::engine::ExecSettings;
use braid_control_plane::engine::trigger::TriggerRequest;
use common::{TestDb, tenant, yaml};
use std::time::{Duration, Instant};
use uuid::Uuid;

async fn trigger(db: &TestDb, priority: Priority) -> Uuid {
    let req = TriggerRequest { workflow_name: "p".into(), priority: Some(priority), ..TriggerRequest::default() };
    let run = db.engine.trigger_run(&tenant(), &req).await.unwrap().run;
    assert_eq!(run.run.priority, priority);
    run.tasks[0].id
}

/// The `n` task ids published on `lane` (publishing runs in the background: this waits for
/// them, and fails after 10 s), sorted, and whether anything more is there.
async fn on_lane(db: &TestDb, lane: &str, n: usize) -> Vec<Uuid> {
    let lanes = [lane.to_owned()];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < n {
        assert!(Instant::now() < deadline, "lane {lane}: {} of {n} published", got.len());
        let read = db.engine.queue().read(tenant().as_str(), &lanes, "test", 100, Duration::from_millis(50)).await;
        got.extend(read.unwrap().iter().map(|d| d.task_id));
    }
    let extra = db.engine.queue().read(tenant().as_str(), &lanes, "test", 100, Duration::ZERO).await.unwrap();
    assert!(extra.is_empty(), "lane {lane} has more than {n}");
    got.sort();
    got
}

/// Calls the reconciler until it has published something (the grace period must pass first).
async fn reconcile(db: &TestDb) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while db.engine.reconcile_once().await.unwrap() == 0 {
        assert!(Instant::now() < deadline, "the reconciler published nothing");
        tokio::task::yield_now().await;
    }
}

async fn lanes_and_aging(db: &TestDb, aged: bool) {
    db.engine.put_workflow(&tenant(), &yaml("name: p\ntasks:\n  - {name: s, task_type: t}\n")).await.unwrap();
    let high = trigger(db, Priority::High).await;
    let normal = trigger(db, Priority::Normal).await;
    let low = trigger(db, Priority::Low).await;
    assert_eq!(on_lane(db, "t#high", 1).await, vec![high]);
    assert_eq!(on_lane(db, "t", 1).await, vec![normal]);
    assert_eq!(on_lane(db, "t#low", 1).await, vec![low]);
    // The reconciler publishes them again after the grace period: on the high lane once they
    // have waited longer than the aging threshold, else on their own.
    reconcile(db).await;
    if aged {
        let mut all = vec![high, normal, low];
        all.sort();
        assert_eq!(on_lane(db, "t#high", 3).await, all);
        assert!(on_lane(db, "t#low", 0).await.is_empty());
    } else {
        assert_eq!(on_lane(db, "t#high", 1).await, vec![high]);
        assert_eq!(on_lane(db, "t", 1).await, vec![normal]);
        assert_eq!(on_lane(db, "t#low", 1).await, vec![low]);
    }
}

fn settings(aging: Duration) -> ExecSettings {
    ExecSettings { reconcile_grace: Duration::from_millis(1), priority_aging: aging, ..ExecSettings::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_tasks_stay_on_their_lane_sqlite() {
    let db = TestDb::sqlite_with(settings(Duration::from_secs(3600))).await;
    lanes_and_aging(&db, false).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waited_tasks_are_promoted_sqlite() {
    let db = TestDb::sqlite_with(settings(Duration::ZERO)).await;
    lanes_and_aging(&db, true).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waited_tasks_are_promoted_postgres() {
    let db = TestDb::postgres_with(settings(Duration::ZERO)).await;
    lanes_and_aging(&db, true).await;
    db.finish().await;
}
