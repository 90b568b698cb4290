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

async fn bulk(db: &TestDb) {
    let e = &db.engine;
    e.put_workflow(&tenant(), &diamond("wf")).await.unwrap();
    let held = e.trigger_run(&tenant(), &trigger("wf", r#"{"k":0}"#, Some("held"))).await.unwrap();
    let reqs = vec![
        trigger("wf", r#"{"i":0}"#, None),
        trigger("wf", r#"{"k":0}"#, Some("held")),
        trigger("wf", r#"{"i":2}"#, Some("new")),
        trigger("wf", r#"{ "i": 2 }"#, Some("new")),
        trigger("wf", "", None),
    ];
    let out = e.trigger_runs(&tenant(), &reqs).await.unwrap();
    let created: Vec<bool> = out.iter().map(|t| t.created).collect();
    assert_eq!(created, [true, false, true, false, true]);
    assert_eq!(out[1].run_id, held.run.run.id, "a held key answers with its run");
    assert_eq!(out[3].run_id, out[2].run_id, "a key repeated within the call answers with the first");
    for t in out.iter().filter(|t| t.created) {
        let run = e.get_run(&tenant(), t.run_id).await.unwrap();
        assert_eq!(run.tasks.len(), 4);
        assert_eq!(run.tasks.iter().filter(|t| t.state == TaskState::Ready).count(), 1);
        let (events, _) = e.run_events(&tenant(), t.run_id, 0, 100).await.unwrap();
        let kinds: Vec<(u64, &str)> = events.iter().map(|e| (e.sequence, e.kind.as_str())).collect();
        assert_eq!(kinds, [(1, "run_created"), (2, "task_ready")]);
    }
    let all = e.list_runs(&tenant(), &RunFilter::default(), 500, "").await.unwrap();
    assert_eq!(all.items.len(), 4);
}
on_both_backends!(a_bulk_trigger_creates_runs_and_honours_keys, bulk);

async fn bulk_all_or_nothing(db: &TestDb) {
    let e = &db.engine;
    e.put_workflow(&tenant(), &diamond("wf")).await.unwrap();
    e.trigger_run(&tenant(), &trigger("wf", r#"{"k":0}"#, Some("held"))).await.unwrap();
    let bad_input = vec![trigger("wf", "{}", None), trigger("wf", "{not json", None)];
    match e.trigger_runs(&tenant(), &bad_input).await.unwrap_err() {
        EngineError::InvalidArgument { field, .. } => assert_eq!(field, "runs[1].input_json"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    let unknown = vec![trigger("wf", "{}", None), trigger("nope", "{}", None)];
    match e.trigger_runs(&tenant(), &unknown).await.unwrap_err() {
        EngineError::NotFound(m) => assert!(m.starts_with("runs[1]: ") && m.contains("nope"), "{m}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let reused = vec![trigger("wf", "{}", None), trigger("wf", r#"{"k":1}"#, Some("held"))];
    match e.trigger_runs(&tenant(), &reused).await.unwrap_err() {
        EngineError::AlreadyExists(m) => assert!(m.starts_with("runs[1]: ") && m.contains("different input"), "{m}"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    let clash = vec![trigger("wf", "{}", Some("x")), trigger("wf", r#"{"k":1}"#, Some("x"))];
    match e.trigger_runs(&tenant(), &clash).await.unwrap_err() {
        EngineError::AlreadyExists(m) => assert!(m.starts_with("runs[1]: ") && m.contains("runs[0]"), "{m}"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    let too_many = vec![trigger("wf", "{}", None); 1001];
    match e.trigger_runs(&tenant(), &too_many).await.unwrap_err() {
        EngineError::InvalidArgument { field, reason } => {
            assert_eq!(field, "runs");
            assert!(reason.contains("1000"), "{reason}");
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    let all = e.list_runs(&tenant(), &RunFilter::default(), 500, "").await.unwrap();
    assert_eq!(all.items.len(), 1, "a refused bulk trigger creates nothing");
    // A full call of a thousand runs is one call.
    let full: Vec<_> = (0..1000).map(|i| trigger("wf", &format!(r#"{{"i":{i}}}"#), None)).collect();
    assert_eq!(e.trigger_runs(&tenant(), &full).await.unwrap().len(), 1000);
}
on_both_backends!(a_refused_bulk_trigger_names_the_request_and_creates_nothing, bulk_all_or_nothing);

/// Bulk triggers racing on the same keys still make one run per key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_bulk_triggers_sharing_keys_make_one_run_per_key_on_postgres() {
    let db = TestDb::postgres().await;
    db.engine.put_workflow(&tenant(), &diamond("wf")).await.unwrap();
    let calls = (0..8).map(|_| {
        let e = db.engine.clone();
        tokio::spawn(async move {
            let reqs: Vec<_> = (0..50).map(|k| trigger("wf", "{}", Some(&format!("k{k}")))).collect();
            e.trigger_runs(&tenant(), &reqs).await
        })
    });
    let outs: Vec<_> = futures::future::join_all(calls).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    for k in 0..50 {
        assert_eq!(outs.iter().filter(|o| o[k].created).count(), 1, "key k{k} created once");
        assert!(outs.iter().all(|o| o[k].run_id == outs[0][k].run_id));
    }
    let all = db.engine.list_runs(&tenant(), &RunFilter::default(), 500, "").await.unwrap();
    assert_eq!(all.items.len(), 50);
    db.finish().await;
}

/// Single triggers arriving together share transactions, yet every caller gets its own answer:
/// an unknown workflow among them fails only its own call, a shared key makes one run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_single_triggers_each_get_their_own_answer_on_postgres() {
    let db = TestDb::postgres().await;
    db.engine.put_workflow(&tenant(), &diamond("wf")).await.unwrap();
    let reqs: Vec<TriggerRequest> = (0..60)
        .map(|i| match i % 6 {
            0 => trigger("missing", "{}", None),
            1 => trigger("wf", r#"{"same":true}"#, Some("shared")),
            _ => trigger("wf", &format!(r#"{{"i":{i}}}"#), None),
        })
        .collect();
    let calls = reqs.iter().cloned().map(|r| {
        let e = db.engine.clone();
        tokio::spawn(async move { e.trigger_run(&tenant(), &r).await })
    });
    let outcomes: Vec<_> = futures::future::join_all(calls).await.into_iter().map(|r| r.unwrap()).collect();
    let mut shared = Vec::new();
    for (i, o) in outcomes.iter().enumerate() {
        match (i % 6, o) {
            (0, Err(EngineError::NotFound(m))) => assert!(m.contains("missing"), "{m}"),
            (1, Ok(o)) => shared.push((o.created, o.run.run.id)),
            (2..=5, Ok(o)) => {
                assert!(o.created);
                assert_eq!(o.run.run.input, format!(r#"{{"i":{i}}}"#), "each caller gets its own run");
                assert_eq!(o.run.tasks.len(), 4);
            }
            (k, other) => panic!("call {i} (kind {k}): unexpected {other:?}"),
        }
    }
    assert_eq!(shared.iter().filter(|(created, _)| *created).count(), 1, "one shared-key call creates the run");
    assert!(shared.iter().all(|(_, id)| *id == shared[0].1), "the others answer with it");
    let all = db.engine.list_runs(&tenant(), &RunFilter::default(), 500, "").await.unwrap();
    assert_eq!(all.items.len(), 40 + 1);
    db.finish().await;
}

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
