//! Large payloads through the engine on SQLite and PostgreSQL with a local object store: the
//! threshold, references in the rows, rehydrated assignments, assembled run outputs, limits, and
//! what a missing or corrupt object does.

mod common;

use braid_control_plane::domain::records::RunDetail;
use braid_control_plane::domain::state::{RunState, TaskState};
use braid_control_plane::engine::complete::{Outcome, Verdict};
use braid_control_plane::engine::dispatch::Assignment;
use braid_control_plane::engine::trigger::TriggerRequest;
use braid_control_plane::engine::{Engine, EngineError, ExecSettings};
use braid_control_plane::objects::{ObjectError, PayloadStore, sha256_hex};
use braid_control_plane::store::entity::{run, task, task_attempt};
use common::{TestDb, tenant, yaml};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

const CHAIN: &str = "name: chain\ntasks:\n  - {name: a, task_type: t}\n  - {name: b, task_type: t, depends_on: [a]}\n";

/// The test database's engine keeping objects in a fresh directory.
async fn engine(db: &TestDb) -> (Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let e = db.engine.clone().with_payloads(PayloadStore::local(dir.path()).unwrap());
    e.put_workflow(&tenant(), &yaml(CHAIN)).await.unwrap();
    (e, dir)
}

async fn trigger(e: &Engine, input: &str) -> RunDetail {
    let req = TriggerRequest { workflow_name: "chain".into(), input_json: input.into(), ..TriggerRequest::default() };
    e.trigger_run(&tenant(), &req).await.unwrap().run
}

/// Leases the run's ready tasks.
async fn lease(e: &Engine, run: Uuid) -> Vec<Assignment> {
    let ready: Vec<Uuid> = e
        .get_run(&tenant(), run)
        .await
        .unwrap()
        .tasks
        .iter()
        .filter(|t| t.state == TaskState::Ready)
        .map(|t| t.id)
        .collect();
    e.lease(&tenant(), "w", &ready).await.unwrap()
}

async fn succeed(e: &Engine, a: &Assignment, output: &str) {
    let verdict = e.complete(&tenant(), a.key, Outcome::Succeeded { output_json: output.into() }).await.unwrap();
    assert_eq!(verdict, Verdict::Accepted);
}

/// A JSON document of about `n` bytes.
fn doc(n: usize, fill: &str) -> String {
    json!({"fill": fill.repeat(n)}).to_string()
}

async fn columns(db: &TestDb, run_id: Uuid) -> (String, Option<String>, Vec<Option<String>>, Vec<Option<String>>) {
    let c = db.store.conn();
    let r = run::Entity::find_by_id(run_id).one(c).await.unwrap().unwrap();
    let tasks = task::Entity::find().filter(task::Column::RunId.eq(run_id)).all(c).await.unwrap();
    let attempts = task_attempt::Entity::find().filter(task_attempt::Column::RunId.eq(run_id)).all(c).await.unwrap();
    (r.input, r.output, tasks.into_iter().map(|t| t.output).collect(), attempts.into_iter().map(|a| a.output).collect())
}

async fn large_ones_go_to_objects(db: &TestDb) {
    let (e, dir) = engine(db).await;

    // Small documents stay in their columns, as before.
    let small = trigger(&e, r#"{"n": 1}"#).await;
    assert_eq!((small.run.input.as_str(), small.run.input_ref.as_ref()), (r#"{"n": 1}"#, None));
    let a = lease(&e, small.run.id).await.remove(0);
    succeed(&e, &a, &doc(200_000, "s")).await;
    let (input, _, outputs, _) = columns(db, small.run.id).await;
    assert_eq!(input, r#"{"n": 1}"#);
    assert!(outputs.iter().flatten().all(|o| o.starts_with('{')), "under 256 KiB stays inline");

    // A 300 KB input: an object, and a reference in the row.
    let input = doc(300_000, "i");
    let run = trigger(&e, &input).await;
    let input_ref = run.run.input_ref.clone().expect("kept in object storage");
    assert!(run.run.input.is_empty());
    assert_eq!(
        (input_ref.size, input_ref.sha256.as_str()),
        (input.len() as u64, sha256_hex(input.as_bytes()).as_str())
    );
    let got = e.get_run(&tenant(), run.run.id).await.unwrap();
    assert_eq!(got.run.input_ref, Some(input_ref.clone()), "GetRun reads the reference back");
    assert_eq!(e.run_input_text(&got.run).await.unwrap(), input);
    let file = dir.path().join(format!("default/runs/{}/{}", run.run.id, input_ref.sha256));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), input);

    // The worker gets the whole input; a's 400 KB output goes to an object too.
    let a = lease(&e, run.run.id).await.remove(0);
    let received: Value = serde_json::from_str(&a.input_json).unwrap();
    assert_eq!(received["input"], serde_json::from_str::<Value>(&input).unwrap());
    let a_out = doc(400_000, "a");
    succeed(&e, &a, &a_out).await;
    // b gets a's output whole; b's own 300 KB output goes to an object.
    let b = lease(&e, run.run.id).await.remove(0);
    let received: Value = serde_json::from_str(&b.input_json).unwrap();
    assert_eq!(received["deps"]["a"], serde_json::from_str::<Value>(&a_out).unwrap());
    let b_out = doc(300_000, "b");
    succeed(&e, &b, &b_out).await;

    let done = e.get_run(&tenant(), run.run.id).await.unwrap();
    assert_eq!(done.run.state, RunState::Succeeded);
    for (t, out) in done.tasks.iter().zip([&a_out, &b_out]) {
        let r = t.output_ref.as_ref().expect("a reference");
        assert_eq!(t.output, None);
        assert_eq!((r.size, r.sha256.clone()), (out.len() as u64, sha256_hex(out.as_bytes())));
        assert_eq!(e.task_output_text(t).await.unwrap().as_deref(), Some(out.as_str()));
    }
    // The run's output is assembled from its sink's object: b's exact text.
    let assembled = format!("{{\"b\":{b_out}}}");
    assert_eq!(done.run.output, None);
    assert_eq!(done.run.output_ref.as_ref().map(|r| (r.size, r.sha256.as_str())), Some((assembled.len() as u64, "")));
    assert_eq!(e.run_output_text(&done).await.unwrap(), Some(assembled));

    // Every payload column holds a short reference.
    let (input, output, outputs, attempts) = columns(db, run.run.id).await;
    for text in std::iter::once(Some(input)).chain([output]).chain(outputs).chain(attempts).flatten() {
        assert!(text.starts_with('@') && text.len() < 300, "{text:.80}");
    }
}
on_both_backends!(large_payloads_go_to_object_storage_and_come_back_whole, large_ones_go_to_objects);

async fn corrupt_or_missing_fails(db: &TestDb) {
    let (e, dir) = engine(db).await;
    let run = trigger(&e, "{}").await;
    let a = lease(&e, run.run.id).await.remove(0);
    let a_out = doc(300_000, "a");
    succeed(&e, &a, &a_out).await;
    let a_task = e.get_run(&tenant(), run.run.id).await.unwrap().tasks.remove(0);
    let a_ref = a_task.output_ref.clone().unwrap();
    let path = dir.path().join(&a_ref.key);
    let damaged = a_out.replacen('a', "A", 1);
    std::fs::write(&path, &damaged).unwrap();

    // The dependent is not sent to a worker: it fails for good, naming the object and both checksums.
    assert!(lease(&e, run.run.id).await.is_empty());
    let done = e.get_run(&tenant(), run.run.id).await.unwrap();
    assert_eq!(done.run.state, RunState::Failed);
    let b = &done.tasks[1];
    assert_eq!(b.state, TaskState::Failed);
    let err = b.last_error.clone().unwrap();
    assert_eq!((err.kind.as_str(), err.retryable), ("payload_corrupt", false));
    let actual = sha256_hex(damaged.as_bytes());
    for part in ["the input of task b cannot be built", "dependency a", &a_ref.key, &a_ref.sha256, &actual] {
        assert!(err.message.contains(part), "{:?} lacks {part}", err.message);
    }
    // Reading the output says why, as DATA_LOSS.
    let read = e.task_output_text(&a_task).await.unwrap_err();
    assert!(matches!(&read, EngineError::Objects(ObjectError::ChecksumMismatch { .. })), "{read:?}");
    assert_eq!(tonic::Status::from(read).code(), tonic::Code::DataLoss);

    // A run input whose object is gone: its first task fails as `payload_missing`.
    let run = trigger(&e, &doc(300_000, "i")).await;
    let key = run.run.input_ref.clone().unwrap().key;
    std::fs::remove_file(dir.path().join(&key)).unwrap();
    assert!(lease(&e, run.run.id).await.is_empty());
    let a = e.get_run(&tenant(), run.run.id).await.unwrap().tasks.remove(0);
    let err = a.last_error.unwrap();
    assert_eq!(err.kind, "payload_missing");
    assert!(err.message.contains(&format!("the run input: object {key} is missing")), "{}", err.message);
}
on_both_backends!(a_corrupt_or_missing_object_fails_the_task_that_needs_it, corrupt_or_missing_fails);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_over_the_limit_are_refused_naming_it() {
    let mut settings = ExecSettings::default();
    settings.payloads.max = 1 << 20;
    let db = TestDb::sqlite_with(settings).await;
    let e = &db.engine;
    e.put_workflow(&tenant(), &yaml(CHAIN)).await.unwrap();
    let too_big = doc((1 << 20) + 1, "x");
    let req =
        TriggerRequest { workflow_name: "chain".into(), input_json: too_big.clone(), ..TriggerRequest::default() };
    match e.trigger_run(&tenant(), &req).await {
        Err(EngineError::InvalidArgument { field, reason }) => {
            assert_eq!(field, "input_json");
            assert_eq!(reason, format!("too large: {} bytes (limit 1048576 bytes)", too_big.len()));
        }
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
    let run = trigger(e, "{}").await;
    let a = lease(e, run.run.id).await.remove(0);
    e.complete(&tenant(), a.key, Outcome::Succeeded { output_json: too_big.clone() }).await.unwrap();
    let t = e.get_run(&tenant(), run.run.id).await.unwrap().tasks.remove(0);
    let err = t.last_error.unwrap();
    assert_eq!((err.kind.as_str(), err.retryable), ("invalid_output", false));
    assert_eq!(err.message, format!("output_json is {} bytes; the limit is 1048576", too_big.len()));
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_whose_dependencies_add_up_to_more_than_a_message_fails_as_input_too_large() {
    let mut settings = ExecSettings::default();
    settings.payloads.max = 24 << 20;
    let db = TestDb::sqlite_with(settings).await;
    let e = &db.engine;
    let fan_in = "name: fan\ntasks:\n  - {name: a, task_type: t}\n  - {name: b, task_type: t}\n  - {name: c, task_type: t}\n  - {name: d, task_type: t, depends_on: [a, b, c]}\n";
    e.put_workflow(&tenant(), &yaml(fan_in)).await.unwrap();
    let req = TriggerRequest { workflow_name: "fan".into(), ..TriggerRequest::default() };
    let run = e.trigger_run(&tenant(), &req).await.unwrap().run.run.id;
    // Three outputs of 22 MiB each: each within the payload limit, together over 63 MiB.
    let big = doc(22 << 20, "x");
    for a in lease(e, run).await {
        succeed(e, &a, &big).await;
    }
    assert!(lease(e, run).await.is_empty(), "d is not sent");
    let d = e.get_run(&tenant(), run).await.unwrap().tasks.into_iter().find(|t| t.name == "d").unwrap();
    assert_eq!(d.state, TaskState::Failed);
    let err = d.last_error.unwrap();
    assert_eq!((err.kind.as_str(), err.retryable), ("input_too_large", false));
    assert!(err.message.contains("a task's input is at most 66060288 bytes"), "{}", err.message);
    db.finish().await;
}
