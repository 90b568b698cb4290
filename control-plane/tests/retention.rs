//! Retention and dead-letter purges on SQLite and PostgreSQL: old finished runs deleted with all their rows (and objects), in bounded batches.
//!
//! Ageing runs: the engine takes its retention cutoffs from its injected clock. Runs are made
//! with that clock on real time; then it jumps 100 days ahead (`later`), so run ids (UUIDv7, real
//! time) and `created_at` are all below the cutoffs. PostgreSQL stamps `finished_at` with its own
//! `now()`, which the engine clock cannot move, so each test sets `finished_at` of its runs
//! explicitly (through the `runs` entity) to the age it needs relative to the jumped clock.

mod common;

use braid_control_plane::domain::records::TaskError;
use braid_control_plane::domain::state::{RunState, TaskState};
use braid_control_plane::engine::complete::Outcome;
use braid_control_plane::engine::dead_letters::PurgeSelection;
use braid_control_plane::engine::retention::RetentionReport;
use braid_control_plane::engine::trigger::TriggerRequest;
use braid_control_plane::engine::{Clock, Engine, EngineError, ExecSettings};
use braid_control_plane::objects::PayloadStore;
use braid_control_plane::queue::InProcessQueue;
use braid_control_plane::store::dead_letters::DeadLetterFilter;
use braid_control_plane::store::entity::{dead_letter, run, run_event, task, task_attempt};
use chrono::{DateTime, Utc};
use common::{TestDb, tenant, yaml};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use uuid::Uuid;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// How far the engine clock of these tests is ahead of the real one, once jumped.
const AHEAD: chrono::TimeDelta = chrono::TimeDelta::days(100);

/// The real clock, until `jump` moves it [`AHEAD`].
#[derive(Debug, Default)]
struct Jumping(AtomicBool);

impl Clock for Jumping {
    fn now(&self) -> DateTime<Utc> {
        if self.0.load(Ordering::SeqCst) { Utc::now() + AHEAD } else { Utc::now() }
    }
}

/// An engine on the test database with a [`Jumping`] clock, the default retention of 30 days,
/// and retention batches of `batch` runs, at most `batches` a pass.
fn engine(db: &TestDb, batch: u32, batches: u32) -> (Engine, Arc<Jumping>) {
    let settings = ExecSettings { retention_batch_size: batch, retention_batches: batches, ..ExecSettings::default() };
    let clock = Arc::new(Jumping::default());
    (Engine::new(db.store.clone(), clock.clone(), Arc::new(InProcessQueue::new()), settings), clock)
}

/// Moves the engine clock [`AHEAD`]: the runs made so far are 100 days old by id and `created_at`.
fn later(clock: &Jumping) {
    clock.0.store(true, Ordering::SeqCst);
}

/// `age` before the jumped clock's now.
fn ago(age: Duration) -> DateTime<Utc> {
    Utc::now() + AHEAD - chrono::Duration::from_std(age).unwrap()
}

async fn put(e: &Engine, text: &str) {
    e.put_workflow(&tenant(), &yaml(text)).await.unwrap();
}

fn two_tasks(name: &str, settings: &str) -> String {
    format!(
        "name: {name}\ntasks:\n  - {{name: a, task_type: t}}\n  - {{name: b, task_type: t, depends_on: [a]}}\n{settings}"
    )
}

fn failing(kind: &str) -> Outcome {
    Outcome::Failed(TaskError { message: "boom".into(), kind: kind.into(), retryable: false, details: None })
}

/// Triggers a run of `workflow` and leases and completes its tasks in order: each succeeds, or
/// the first fails (not retryable: dead-lettered, the run fails) when `fail` is given.
async fn finished_run(e: &Engine, workflow: &str, fail: Option<&str>) -> Uuid {
    let req = TriggerRequest { workflow_name: workflow.into(), input_json: "{}".into(), ..TriggerRequest::default() };
    let id = e.trigger_run(&tenant(), &req).await.unwrap().run.run.id;
    loop {
        let r = e.get_run(&tenant(), id).await.unwrap();
        let ready: Vec<Uuid> = r.tasks.iter().filter(|t| t.state == TaskState::Ready).map(|t| t.id).collect();
        if ready.is_empty() {
            assert!(r.run.state.is_terminal(), "run {id} is {:?} with nothing ready", r.run.state);
            return id;
        }
        for a in e.lease(&tenant(), "w", &ready).await.unwrap() {
            let outcome = match fail {
                Some(kind) => failing(kind),
                None => Outcome::Succeeded { output_json: json!({"ok": true}).to_string() },
            };
            e.complete(&tenant(), a.key, outcome).await.unwrap();
        }
    }
}

/// Sets the run's `finished_at`.
async fn finished_at(db: &TestDb, id: Uuid, at: DateTime<Utc>) {
    let done = run::Entity::update_many()
        .col_expr(run::Column::FinishedAt, Expr::value(at))
        .filter(run::Column::Id.eq(id))
        .exec(db.store.conn())
        .await
        .unwrap();
    assert_eq!(done.rows_affected, 1);
}

/// Rows the run owns: (runs, tasks, attempts, events, dead letters).
async fn rows(db: &TestDb, id: Uuid) -> (u64, u64, u64, u64, u64) {
    let c = db.store.conn();
    (
        run::Entity::find().filter(run::Column::Id.eq(id)).count(c).await.unwrap(),
        task::Entity::find().filter(task::Column::RunId.eq(id)).count(c).await.unwrap(),
        task_attempt::Entity::find().filter(task_attempt::Column::RunId.eq(id)).count(c).await.unwrap(),
        run_event::Entity::find().filter(run_event::Column::RunId.eq(id)).count(c).await.unwrap(),
        dead_letter::Entity::find().filter(dead_letter::Column::RunId.eq(id)).count(c).await.unwrap(),
    )
}

async fn gone(db: &TestDb, id: Uuid) -> bool {
    rows(db, id).await == (0, 0, 0, 0, 0)
}

async fn old_runs_go_with_all_their_rows(db: &TestDb) {
    let (e, clock) = engine(db, 500, 20);
    put(&e, &two_tasks("keep", "")).await;
    let old = finished_run(&e, "keep", None).await;
    let young = finished_run(&e, "keep", None).await;
    // Unfinished: a task leased and never completed, even though its run is old.
    let req = TriggerRequest { workflow_name: "keep".into(), input_json: "{}".into(), ..TriggerRequest::default() };
    let running = e.trigger_run(&tenant(), &req).await.unwrap().run.run.id;
    let tasks = e.get_run(&tenant(), running).await.unwrap().tasks;
    let ready: Vec<Uuid> = tasks.iter().filter(|t| t.state == TaskState::Ready).map(|t| t.id).collect();
    assert_eq!(e.lease(&tenant(), "w", &ready).await.unwrap().len(), 1);
    finished_at(db, old, ago(31 * DAY)).await;
    finished_at(db, young, ago(29 * DAY)).await;
    later(&clock);

    let (_, tasks, attempts, events, _) = rows(db, old).await;
    assert_eq!((tasks, attempts), (2, 2));
    assert!(events >= 4, "a run of two tasks logs at least 4 events, got {events}");
    let report = e.retention_once().await.unwrap();
    assert_eq!(report, RetentionReport { runs: 1, tasks, attempts, events });
    assert!(gone(db, old).await);
    assert!(matches!(e.get_run(&tenant(), old).await, Err(EngineError::NotFound(_))));
    assert_eq!(rows(db, young).await.0, 1, "a run finished within the retention stays");
    assert_eq!(rows(db, running).await.0, 1, "an unfinished run stays");
    assert_eq!(e.retention_once().await.unwrap(), RetentionReport::default(), "nothing left to delete");
}
on_both_backends!(old_finished_runs_are_deleted_with_their_rows, old_runs_go_with_all_their_rows);

/// A finished run of `workflow` with input `input` whose tasks each return `output`.
async fn finished_run_with(e: &Engine, workflow: &str, input: &str, output: &str) -> Uuid {
    let req = TriggerRequest { workflow_name: workflow.into(), input_json: input.into(), ..TriggerRequest::default() };
    let id = e.trigger_run(&tenant(), &req).await.unwrap().run.run.id;
    loop {
        let r = e.get_run(&tenant(), id).await.unwrap();
        let ready: Vec<Uuid> = r.tasks.iter().filter(|t| t.state == TaskState::Ready).map(|t| t.id).collect();
        if ready.is_empty() {
            assert_eq!(r.run.state, RunState::Succeeded);
            return id;
        }
        for a in e.lease(&tenant(), "w", &ready).await.unwrap() {
            e.complete(&tenant(), a.key, Outcome::Succeeded { output_json: output.into() }).await.unwrap();
        }
    }
}

async fn objects_go_with_their_runs(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let (e, clock) = engine(db, 500, 20);
    let e = e.with_payloads(PayloadStore::local(dir.path()).unwrap());
    put(&e, &two_tasks("big", "")).await;
    let (input, output) =
        (json!({"in": "i".repeat(300_000)}).to_string(), json!({"out": "o".repeat(300_000)}).to_string());
    let old = finished_run_with(&e, "big", &input, &output).await;
    let young = finished_run_with(&e, "big", &input, &output).await;
    // An object no row references, as a result turned away by fencing leaves behind.
    e.payloads().put_run_payload("default", old, bytes::Bytes::from_static(b"{\"stale\":1}")).await.unwrap();
    let objects =
        |id: Uuid| std::fs::read_dir(dir.path().join(format!("default/runs/{id}"))).map_or(0, Iterator::count);
    assert_eq!(objects(old), 3, "the input, the (shared) output and the stray one");
    assert_eq!(objects(young), 2);
    finished_at(db, old, ago(31 * DAY)).await;
    finished_at(db, young, ago(29 * DAY)).await;
    later(&clock);

    assert_eq!(e.retention_once().await.unwrap().runs, 1);
    assert!(gone(db, old).await);
    assert_eq!(objects(old), 0, "every object under the deleted run's prefix is gone");
    assert!(!dir.path().join(format!("default/runs/{old}")).exists());
    assert_eq!(objects(young), 2, "a run within its retention keeps its objects");
    let kept = e.get_run(&tenant(), young).await.unwrap();
    assert_eq!(e.run_input_text(&kept.run).await.unwrap(), input);
}
on_both_backends!(retention_deletes_the_objects_of_the_runs_it_deletes, objects_go_with_their_runs);

async fn per_workflow(db: &TestDb) {
    let (e, clock) = engine(db, 500, 20);
    put(&e, &two_tasks("short", "settings: {retention: 1h}\n")).await;
    put(&e, &two_tasks("long", "settings: {retention: 365d}\n")).await;
    put(&e, &two_tasks("plain", "")).await;
    // v1 keeps its runs an hour; v2 (the latest) sets nothing, so the default applies.
    put(&e, &two_tasks("changed", "settings: {retention: 1h}\n")).await;
    let changed = finished_run(&e, "changed", None).await;
    put(&e, &format!("{}description: v2\n", two_tasks("changed", ""))).await;
    let short_2h = finished_run(&e, "short", None).await;
    let short_30m = finished_run(&e, "short", None).await;
    let long_40d = finished_run(&e, "long", None).await;
    let plain_2h = finished_run(&e, "plain", None).await;
    let plain_40d = finished_run(&e, "plain", None).await;
    for (id, age) in [
        (changed, 2 * 60 * 60),
        (short_2h, 2 * 60 * 60),
        (short_30m, 30 * 60),
        (long_40d, 40 * DAY.as_secs()),
        (plain_2h, 2 * 60 * 60),
        (plain_40d, 40 * DAY.as_secs()),
    ] {
        finished_at(db, id, ago(Duration::from_secs(age))).await;
    }
    later(&clock);
    assert_eq!(e.retention_once().await.unwrap().runs, 2);
    assert!(gone(db, short_2h).await, "past its workflow's 1h");
    assert!(gone(db, plain_40d).await, "past the default 30d");
    for kept in [short_30m, long_40d, plain_2h, changed] {
        assert_eq!(rows(db, kept).await.0, 1, "run {kept} is within its retention");
    }
}
on_both_backends!(a_workflow_retention_overrides_the_default, per_workflow);

async fn dead_letters_hold_runs(db: &TestDb) {
    let (e, clock) = engine(db, 500, 20);
    put(&e, &two_tasks("dlq", "")).await;
    let purged = finished_run(&e, "dlq", Some("bad_input")).await;
    let redriven = finished_run(&e, "dlq", Some("flaky")).await;
    for id in [purged, redriven] {
        finished_at(db, id, ago(40 * DAY)).await;
    }
    later(&clock);
    assert_eq!(e.retention_once().await.unwrap().runs, 0, "runs with waiting dead letters are kept");

    // Redriven and then succeeded: its run (and the redriven dead letter) can go.
    let all = e.list_dead_letters(&tenant(), &DeadLetterFilter::default(), 0, "").await.unwrap().items;
    assert_eq!(all.len(), 2);
    let to_redrive = all.iter().find(|d| d.run_id == redriven).unwrap();
    e.redrive(&tenant(), &[to_redrive.id], &DeadLetterFilter::default()).await.unwrap();
    loop {
        let r = e.get_run(&tenant(), redriven).await.unwrap();
        let ready: Vec<Uuid> = r.tasks.iter().filter(|t| t.state == TaskState::Ready).map(|t| t.id).collect();
        if ready.is_empty() {
            break;
        }
        for a in e.lease(&tenant(), "w", &ready).await.unwrap() {
            e.complete(&tenant(), a.key, Outcome::Succeeded { output_json: "{}".into() }).await.unwrap();
        }
    }
    finished_at(db, redriven, ago(40 * DAY)).await;
    assert_eq!(e.retention_once().await.unwrap().runs, 1);
    assert!(gone(db, redriven).await, "the redriven dead letter went with its run");
    assert_eq!(rows(db, purged).await.0, 1);

    // Purged: the run becomes eligible.
    let left = e.list_dead_letters(&tenant(), &DeadLetterFilter::default(), 0, "").await.unwrap().items;
    assert_eq!(left.len(), 1);
    assert_eq!(e.purge_dead_letters(&tenant(), &PurgeSelection::Ids(vec![left[0].id])).await.unwrap(), 1);
    assert_eq!(rows(db, purged).await.4, 0);
    assert_eq!(e.get_run(&tenant(), purged).await.unwrap().tasks[0].state, TaskState::Failed, "the task stays failed");
    assert_eq!(e.retention_once().await.unwrap().runs, 1);
    assert!(gone(db, purged).await);
}
on_both_backends!(runs_with_waiting_dead_letters_are_kept_until_purged, dead_letters_hold_runs);

async fn bounded(db: &TestDb) {
    // Batches of 2, at most 3 a pass: 6 runs a pass at most.
    let (e, clock) = engine(db, 2, 3);
    put(&e, &two_tasks("many", "")).await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        let id = finished_run(&e, "many", None).await;
        finished_at(db, id, ago(40 * DAY)).await;
        ids.push(id);
    }
    later(&clock);
    assert_eq!(e.retention_once().await.unwrap().runs, 6);
    for id in &ids[..6] {
        assert!(gone(db, *id).await, "oldest first");
    }
    assert_eq!(e.retention_once().await.unwrap().runs, 4);
    assert_eq!(e.retention_once().await.unwrap().runs, 0);
    assert_eq!(run::Entity::find().count(db.store.conn()).await.unwrap(), 0);
}
on_both_backends!(each_pass_does_a_bounded_number_of_batches, bounded);

async fn purges(db: &TestDb) {
    let (e, _) = engine(db, 500, 20);
    put(&e, &two_tasks("p1", "")).await;
    put(&e, &two_tasks("p2", "")).await;
    for (w, kind) in [("p1", "x"), ("p1", "y"), ("p2", "x"), ("p2", "x")] {
        finished_run(&e, w, Some(kind)).await;
    }
    let list = |f: DeadLetterFilter| {
        let e = e.clone();
        async move { e.list_dead_letters(&tenant(), &f, 0, "").await.unwrap().items }
    };
    let all = list(DeadLetterFilter::default()).await;
    assert_eq!(all.len(), 4);
    // A missing id purges nothing, and says which.
    let missing = Uuid::now_v7();
    let err = e.purge_dead_letters(&tenant(), &PurgeSelection::Ids(vec![all[0].id, missing])).await.unwrap_err();
    assert!(matches!(&err, EngineError::NotFound(m) if m.contains(&missing.to_string())), "{err}");
    assert_eq!(list(DeadLetterFilter::default()).await.len(), 4);
    // An id of another tenant is not found either.
    let other = braid_control_plane::domain::records::Tenant("other".into());
    let err = e.purge_dead_letters(&other, &PurgeSelection::Ids(vec![all[0].id])).await.unwrap_err();
    assert!(matches!(err, EngineError::NotFound(_)), "{err}");
    assert!(matches!(
        e.purge_dead_letters(&tenant(), &PurgeSelection::Ids(Vec::new())).await,
        Err(EngineError::InvalidArgument { .. })
    ));
    // By filter: same semantics as listing and redriving.
    let p1_x = DeadLetterFilter {
        workflow_name: Some("p1".into()),
        error_type: Some("x".into()),
        ..DeadLetterFilter::default()
    };
    assert_eq!(e.purge_dead_letters(&tenant(), &PurgeSelection::Filter(p1_x.clone())).await.unwrap(), 1);
    assert!(list(p1_x).await.is_empty());
    let p2 = DeadLetterFilter { workflow_name: Some("p2".into()), ..DeadLetterFilter::default() };
    assert_eq!(e.purge_dead_letters(&tenant(), &PurgeSelection::Filter(p2)).await.unwrap(), 2);
    let left = list(DeadLetterFilter::default()).await;
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].workflow_name.as_str(), left[0].error.kind.as_str()), ("p1", "y"));
    let everything = PurgeSelection::Filter(DeadLetterFilter::default());
    assert_eq!(e.purge_dead_letters(&tenant(), &everything).await.unwrap(), 1);
    assert_eq!(dead_letter::Entity::find().count(db.store.conn()).await.unwrap(), 0);
}
on_both_backends!(dead_letters_are_purged_by_id_or_filter, purges);

/// PostgreSQL: a run locked by another transaction is skipped, not waited for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_run_is_skipped_not_waited_for() {
    use sea_orm::sea_query::LockType;
    let db = TestDb::postgres().await;
    let (e, clock) = engine(&db, 500, 20);
    put(&e, &two_tasks("locked", "")).await;
    let (held, free) = (finished_run(&e, "locked", None).await, finished_run(&e, "locked", None).await);
    for id in [held, free] {
        finished_at(&db, id, ago(40 * DAY)).await;
    }
    later(&clock);
    let txn = db.store.begin().await.unwrap();
    let locked = run::Entity::find_by_id(held).select_only().column(run::Column::Id).lock(LockType::Update);
    assert_eq!(locked.into_tuple::<Uuid>().one(&txn).await.unwrap(), Some(held));
    let pass = tokio::time::timeout(Duration::from_secs(30), e.retention_once()).await.expect("retention waited");
    assert_eq!(pass.unwrap().runs, 1);
    assert!(gone(&db, free).await);
    txn.rollback().await.unwrap();
    assert_eq!(e.retention_once().await.unwrap().runs, 1);
    assert!(gone(&db, held).await);
    db.finish().await;
}
