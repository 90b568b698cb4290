//! Triggers on SQLite and PostgreSQL: runs with their tasks, idempotency keys, listing.

mod common;

use braid_control_plane::domain::records::RunFilter;
use braid_control_plane::domain::state::{RunState, TaskState};
use braid_control_plane::engine::EngineError;
use braid_control_plane::engine::trigger::TriggerRequest;
use common::{TestDb, diamond, tenant};

fn trigger(workflow: &str, input: &str, key: Option<&str>) -> TriggerRequest {
    TriggerRequest {
        workflow_name: workflow.into(),
        input_json: input.into(),
        idempotency_key: key.map(Into::into),
        ..TriggerRequest::default()
    }
}

async fn run_with_tasks(db: &TestDb) {
    let e = &db.engine;
    e.put_workflow(&tenant(), &diamond("wf")).await.unwrap();
    let out = e.trigger_run(&tenant(), &trigger("wf", r#"{"n": 1}"#, None)).await.unwrap();
    assert!(out.created);
    let run = e.get_run(&tenant(), out.run.run.id).await.unwrap();
    assert_eq!(run.run.state, RunState::Running);
    assert_eq!(run.run.workflow_version, 1);
    assert_eq!(run.run.input, r#"{"n": 1}"#);
    let states: Vec<(&str, TaskState)> = run.tasks.iter().map(|t| (t.name.as_str(), t.state)).collect();
    assert_eq!(
        states,
        [("a", TaskState::Ready), ("b", TaskState::Pending), ("c", TaskState::Pending), ("d", TaskState::Pending)]
    );
    assert_eq!(run.tasks[3].depends_on, ["b", "c"]);
    assert_eq!(run, out.run, "the trigger's answer equals what GetRun reads back");
    let (events, _) = e.run_events(&tenant(), out.run.run.id, 0, 100).await.unwrap();
    let seq: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(seq, [1, 2]);
    assert_eq!(events[0].kind, "run_created");
    assert_eq!(events[1].kind, "task_ready");
    assert_eq!(events[1].task_name.as_deref(), Some("a"));
}
on_both_backends!(a_trigger_creates_the_run_and_its_tasks, run_with_tasks);

async fn idempotency(db: &TestDb) {
    let e = &db.engine;
    e.put_workflow(&tenant(), &diamond("wf")).await.unwrap();
    let first = e.trigger_run(&tenant(), &trigger("wf", r#"{"a":1,"b":2}"#, Some("k"))).await.unwrap();
    // The same document written differently is the same input.
    let again = e.trigger_run(&tenant(), &trigger("wf", r#"{ "b": 2, "a": 1 }"#, Some("k"))).await.unwrap();
    assert!(first.created);
    assert!(!again.created);
    assert_eq!(first.run.run.id, again.run.run.id);
    let other = e.trigger_run(&tenant(), &trigger("wf", r#"{"a":2}"#, Some("k"))).await.unwrap_err();
    match other {
        EngineError::AlreadyExists(m) => assert!(m.contains("different input"), "{m}"),
        e => panic!("expected AlreadyExists, got {e:?}"),
    }
    // Without a key every trigger is a new run.
    let a = e.trigger_run(&tenant(), &trigger("wf", "", None)).await.unwrap();
    let b = e.trigger_run(&tenant(), &trigger("wf", "", None)).await.unwrap();
    assert_ne!(a.run.run.id, b.run.run.id);
    assert_eq!(a.run.run.input, "{}");
}
on_both_backends!(an_idempotency_key_returns_the_same_run, idempotency);

async fn bad_triggers(db: &TestDb) {
    let e = &db.engine;
    e.put_workflow(&tenant(), &diamond("wf")).await.unwrap();
    assert!(matches!(e.trigger_run(&tenant(), &trigger("nope", "", None)).await, Err(EngineError::NotFound(_))));
    let mut versioned = trigger("wf", "", None);
    versioned.workflow_version = Some(9);
    assert!(matches!(e.trigger_run(&tenant(), &versioned).await, Err(EngineError::NotFound(_))));
    match e.trigger_run(&tenant(), &trigger("wf", "{not json", None)).await {
        Err(EngineError::InvalidArgument { field, .. }) => assert_eq!(field, "input_json"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    let long_key = "k".repeat(200);
    match e.trigger_run(&tenant(), &trigger("wf", "", Some(&long_key))).await {
        Err(EngineError::InvalidArgument { field, reason }) => {
            assert_eq!(field, "idempotency_key");
            assert!(reason.contains("128"), "{reason}");
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    let page = e.list_runs(&tenant(), &RunFilter::default(), 0, "").await.unwrap();
    assert!(page.items.is_empty(), "refused triggers must create nothing");
}
on_both_backends!(bad_triggers_are_refused_and_create_nothing, bad_triggers);

async fn listing(db: &TestDb) {
    let e = &db.engine;
    e.put_workflow(&tenant(), &diamond("one")).await.unwrap();
    e.put_workflow(&tenant(), &diamond("two")).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..7 {
        let wf = if i % 2 == 0 { "one" } else { "two" };
        ids.push(e.trigger_run(&tenant(), &trigger(wf, "", None)).await.unwrap().run.run.id);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = e.list_runs(&tenant(), &RunFilter::default(), 3, &token).await.unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|r| r.id));
        match page.next {
            Some(t) => token = t,
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, every run once");
    let filter = RunFilter { workflow_name: Some("one".into()), ..RunFilter::default() };
    let ones = e.list_runs(&tenant(), &filter, 0, "").await.unwrap();
    assert_eq!(ones.items.len(), 4);
    assert!(ones.items.iter().all(|r| r.workflow_name == "one"));
    let done = RunFilter { states: vec![RunState::Succeeded], ..RunFilter::default() };
    assert!(e.list_runs(&tenant(), &done, 0, "").await.unwrap().items.is_empty());
    let future =
        RunFilter { created_after: Some(chrono::Utc::now() + chrono::Duration::hours(1)), ..RunFilter::default() };
    assert!(e.list_runs(&tenant(), &future, 0, "").await.unwrap().items.is_empty());
}
on_both_backends!(runs_are_listed_newest_first_in_pages, listing);

/// The issue's bar: 100 parallel triggers with one key make exactly one run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_hundred_concurrent_triggers_with_one_key_make_one_run_on_postgres() {
    let db = TestDb::postgres().await;
    db.engine.put_workflow(&tenant(), &diamond("wf")).await.unwrap();
    let triggers = (0..100).map(|_| {
        let e = db.engine.clone();
        tokio::spawn(async move { e.trigger_run(&tenant(), &trigger("wf", r#"{"x":1}"#, Some("once"))).await })
    });
    let outcomes: Vec<_> = futures::future::join_all(triggers).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| o.created).count(), 1, "exactly one trigger creates the run");
    let id = outcomes[0].run.run.id;
    assert!(outcomes.iter().all(|o| o.run.run.id == id), "every trigger answers with the same run");
    let all = db.engine.list_runs(&tenant(), &RunFilter::default(), 500, "").await.unwrap();
    assert_eq!(all.items.len(), 1, "one run in the database");
    assert_eq!(db.engine.get_run(&tenant(), id).await.unwrap().tasks.len(), 4);
    db.finish().await;
}

#[tokio::test]
async fn an_unmigrated_database_is_refused() {
    let (db, url) = braid_migrations::testing::fresh_postgres().await;
    let store = braid_control_plane::store::Store::connect(&url, 2).await.unwrap();
    let err = store.check_schema().await.unwrap_err().to_string();
    assert!(err.contains("braid migrate"), "{err}");
    store.migrate().await.unwrap();
    store.check_schema().await.unwrap();
    store.close().await.unwrap();
    braid_migrations::testing::drop_postgres(db, &url).await;
}
