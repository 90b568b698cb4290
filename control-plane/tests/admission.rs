//! Run admission through the engine on SQLite and PostgreSQL: queued runs wait with a reason, start in order as slots free, per key, and when a new version raises the limit.

mod common;

use braid_control_plane::domain::records::RunDetail;
use braid_control_plane::domain::state::{RunState, TaskState};
use braid_control_plane::engine::EngineError;
use braid_control_plane::engine::complete::{Outcome, Verdict};
use braid_control_plane::engine::trigger::TriggerRequest;
use common::{TestDb, tenant, yaml};
use uuid::Uuid;

fn limited(settings: &str) -> String {
    format!(
        "name: lim\nsettings: {{{settings}}}\ntasks:\n  - {{name: a, task_type: t}}\n  - {{name: b, task_type: t, depends_on: [a]}}\n"
    )
}

async fn trigger(db: &TestDb, key: Option<&str>) -> RunDetail {
    let req = TriggerRequest {
        workflow_name: "lim".into(),
        concurrency_key: key.map(str::to_owned),
        ..TriggerRequest::default()
    };
    db.engine.trigger_run(&tenant(), &req).await.unwrap().run
}

async fn get(db: &TestDb, id: Uuid) -> RunDetail {
    db.engine.get_run(&tenant(), id).await.unwrap()
}

/// Leases and succeeds every ready task of the run until it ends.
async fn run_to_end(db: &TestDb, id: Uuid) {
    for _ in 0..4 {
        let ready: Vec<Uuid> =
            get(db, id).await.tasks.iter().filter(|t| t.state == TaskState::Ready).map(|t| t.id).collect();
        for a in db.engine.lease(&tenant(), "w", &ready).await.unwrap() {
            let out = Outcome::Succeeded { output_json: "{}".into() };
            assert_eq!(db.engine.complete(&tenant(), a.key, out).await.unwrap(), Verdict::Accepted);
        }
    }
    assert_eq!(get(db, id).await.run.state, RunState::Succeeded);
}

async fn queue_in_order(db: &TestDb) {
    db.engine.put_workflow(&tenant(), &yaml(&limited("max_concurrent_runs: 1"))).await.unwrap();
    let first = trigger(db, None).await;
    let second = trigger(db, None).await;
    let third = trigger(db, None).await;
    assert_eq!(first.run.state, RunState::Running);
    for r in [&second, &third] {
        assert_eq!(r.run.state, RunState::Queued);
        assert!(r.tasks.iter().all(|t| t.state == TaskState::Pending), "nothing of a queued run is ready");
        assert_eq!(r.run.reason.as_deref(), Some("waiting for a slot: max_concurrent_runs 1 of workflow \"lim\""));
        assert_eq!(r.run.started_at, None);
    }
    run_to_end(db, first.run.id).await;
    let second = get(db, second.run.id).await;
    assert_eq!(second.run.state, RunState::Running, "the oldest queued run starts when the slot frees");
    assert_eq!(second.run.reason, None);
    assert!(second.run.started_at.is_some());
    assert_eq!(get(db, third.run.id).await.run.state, RunState::Queued);
    // Cancelling the running run frees its slot too.
    db.engine.cancel_run(&tenant(), second.run.id, "").await.unwrap();
    run_to_end(db, third.run.id).await;
}
on_both_backends!(queued_runs_start_in_order, queue_in_order);

async fn per_key(db: &TestDb) {
    db.engine.put_workflow(&tenant(), &yaml(&limited("max_per_key: 1"))).await.unwrap();
    let a1 = trigger(db, Some("a")).await;
    let a2 = trigger(db, Some("a")).await;
    let b1 = trigger(db, Some("b")).await;
    let none = trigger(db, None).await;
    assert_eq!(a1.run.state, RunState::Running);
    assert_eq!(a2.run.state, RunState::Queued);
    assert!(
        a2.run.reason.as_deref().unwrap().contains("max_per_key 1 for concurrency key \"a\""),
        "{:?}",
        a2.run.reason
    );
    assert_eq!(b1.run.state, RunState::Running, "another key is not held up");
    assert_eq!(none.run.state, RunState::Running, "a run without a key is not limited per key");
    run_to_end(db, a1.run.id).await;
    assert_eq!(get(db, a2.run.id).await.run.state, RunState::Running);
}
on_both_backends!(per_key_limits, per_key);

async fn raised_limit(db: &TestDb) {
    db.engine.put_workflow(&tenant(), &yaml(&limited("max_concurrent_runs: 1"))).await.unwrap();
    let runs = [trigger(db, None).await, trigger(db, None).await, trigger(db, None).await];
    assert_eq!(runs[2].run.state, RunState::Queued);
    db.engine.put_workflow(&tenant(), &yaml(&limited("max_concurrent_runs: 3"))).await.unwrap();
    // No run ended: the reconciler's admission pass starts them.
    db.engine.reconcile_once().await.unwrap();
    for r in &runs {
        assert_eq!(get(db, r.run.id).await.run.state, RunState::Running);
    }
    // A queued run can be cancelled; it never ran.
    db.engine
        .put_workflow(&tenant(), &yaml(&limited("max_concurrent_runs: 3, concurrency_policy: cancel_newest")))
        .await
        .unwrap();
    let fourth = trigger(db, None).await;
    assert_eq!(fourth.run.state, RunState::Cancelled);
    assert!(fourth.run.reason.as_deref().unwrap().contains("cancel_newest"));
    assert!(get(db, fourth.run.id).await.tasks.iter().all(|t| t.state == TaskState::Cancelled));
}
on_both_backends!(a_raised_limit_admits_and_cancel_newest_cancels, raised_limit);

#[tokio::test]
async fn bad_keys_and_policies_are_refused() {
    let db = TestDb::sqlite().await;
    let err =
        db.engine.put_workflow(&tenant(), &yaml(&limited("concurrency_policy: cancel_newest"))).await.unwrap_err();
    assert!(err.to_string().contains("settings.concurrency_policy"), "{err}");
    db.engine.put_workflow(&tenant(), &yaml(&limited("max_per_key: 1"))).await.unwrap();
    let req = TriggerRequest {
        workflow_name: "lim".into(),
        concurrency_key: Some("k".repeat(129)),
        ..TriggerRequest::default()
    };
    match db.engine.trigger_run(&tenant(), &req).await {
        Err(EngineError::InvalidArgument { field, reason }) => {
            assert_eq!(field, "concurrency_key");
            assert!(reason.contains("limit 128 bytes"), "{reason}");
        }
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
    db.finish().await;
}
