//! Large payloads end to end: 5 MiB outputs and inputs flow between Rust and Python workers through
//! object storage (a local directory) while PostgreSQL keeps only references, and a corrupted
//! object fails the dependent task instead of reaching a worker.

use braid_e2e::cluster::Cluster;
use braid_e2e::{ExampleWorker, http_get, repo_root, tool};
use braid_proto::v1 as pb;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

const BIG: usize = 5 * 1024 * 1024;
/// What PostgreSQL may hold per row of a run with 5 MiB payloads: references only.
const SMALL_ROW: i64 = 4096;
const DAG: &str =
    "name: big\ntasks:\n  - {name: a, task_type: blob}\n  - {name: b, task_type: digest, depends_on: [a]}\n";

/// The letters the example workers' `blob` makes (`blob_text` in both of them).
fn blob_text(bytes: usize, seed: u64) -> String {
    (0..bytes as u64).map(|i| char::from(b'a' + ((i * 31 + seed * 17 + i / 97) % 26) as u8)).collect()
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn python(c: &Cluster, name: &str, types: &str) -> ExampleWorker {
    let ledger = c.ledger(name);
    let mut cmd = Command::new(tool("BRAID_PYTHON"));
    cmd.arg(repo_root().join("clients/python/examples/example_worker.py"));
    cmd.args(["--endpoint", &c.server.grpc.to_string(), "--name", name, "--slots", "2", "--types", types]);
    cmd.arg("--ledger").arg(&ledger);
    ExampleWorker::spawn(cmd, name, &ledger)
}

async fn trigger(c: &Cluster, input: &Value) -> pb::Run {
    let req =
        pb::TriggerRunRequest { workflow_name: "big".into(), input_json: input.to_string(), ..Default::default() };
    c.trigger_on(&c.server, req).await
}

fn task<'a>(run: &'a pb::Run, name: &str) -> &'a pb::Task {
    run.tasks.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no task {name} in {run:?}"))
}

/// The size of the run's row and of each of its task rows, and of their payload columns, in bytes.
async fn row_sizes(c: &Cluster, run_id: &str) -> Vec<(String, i64, i64)> {
    let db = Database::connect(c.database_url()).await.unwrap();
    let sql = format!(
        "SELECT 'run' AS what, pg_column_size(r.*)::bigint AS row, \
                (coalesce(octet_length(r.input), 0) + coalesce(octet_length(r.output), 0))::bigint AS payload \
           FROM runs r WHERE r.id = '{run_id}' \
         UNION ALL \
         SELECT 'task ' || t.name, pg_column_size(t.*)::bigint, coalesce(octet_length(t.output), 0)::bigint \
           FROM tasks t WHERE t.run_id = '{run_id}' \
         UNION ALL \
         SELECT 'attempt ' || a.attempt, pg_column_size(a.*)::bigint, coalesce(octet_length(a.output), 0)::bigint \
           FROM task_attempts a WHERE a.run_id = '{run_id}'"
    );
    let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
    let sizes = rows
        .iter()
        .map(|r| (r.try_get("", "what").unwrap(), r.try_get("", "row").unwrap(), r.try_get("", "payload").unwrap()))
        .collect();
    db.close().await.unwrap();
    sizes
}

/// Which SDK language served each task of `run`.
async fn languages(c: &Cluster, run: &pb::Run) -> HashMap<String, String> {
    let mut admin = pb::admin_service_client::AdminServiceClient::new(c.server.channel().await);
    let workers = admin.list_workers(pb::ListWorkersRequest::default()).await.unwrap().into_inner().workers;
    let by_id: HashMap<String, String> = workers.into_iter().map(|w| (w.id, w.sdk_language)).collect();
    run.tasks
        .iter()
        .map(|t| {
            let worker = &t.attempts.last().expect("an attempt").worker_id;
            (t.name.clone(), by_id.get(worker).cloned().unwrap_or_default())
        })
        .collect()
}

/// A 5 MiB run input and a 5 MiB output of `a` reach `b` exactly; every row stays small.
async fn five_mib_flow(c: &Cluster, seed: u64, producer: &str, consumer: &str) {
    let expected = blob_text(BIG, seed);
    let input_blob = blob_text(BIG, seed + 1);
    let input = json!({"bytes": BIG, "seed": seed, "blob": input_blob});
    let started = trigger(c, &input).await;
    let input_ref = started.input_ref.clone().expect("a 5 MiB input is kept in object storage");
    assert!(started.input_json.is_empty());
    assert_eq!(input_ref.size, input.to_string().len() as u64);
    assert_eq!(input_ref.sha256, sha256(&input.to_string()));

    let run = c.finish(&started.id).await;
    assert_eq!(run.state, pb::RunState::Succeeded as i32, "{run:?}");
    assert_eq!(languages(c, &run).await, HashMap::from([("a".into(), producer.into()), ("b".into(), consumer.into())]));
    let a = task(&run, "a");
    let a_ref = a.output_ref.as_ref().expect("a's 5 MiB output is kept in object storage");
    assert!(a.output_json.is_empty());
    let a_output = json!({"blob": expected, "sha256": sha256(&expected)});
    assert!(a_ref.size > BIG as u64, "{a_ref:?}");

    // b received both whole: the run input's blob and a's blob, byte for byte.
    let b: Value = serde_json::from_str(&task(&run, "b").output_json).expect("b's small output is inline");
    assert_eq!(b["deps"]["a"], json!({"bytes": BIG, "sha256": sha256(&expected)}), "{b}");
    assert_eq!(b["input"], json!({"bytes": BIG, "sha256": sha256(&input_blob)}), "{b}");
    assert_eq!(a_output["sha256"], json!(sha256(&expected)));

    // The HTTP API serves the whole documents, verified.
    let (status, body) = http_get(c.server.http, &format!("/api/v1/runs/{}/tasks/a/output", run.id)).unwrap();
    assert_eq!(status, 200);
    assert_eq!(sha256(&body), a_ref.sha256, "the download is the stored document");
    let served: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(served["blob"].as_str().map(sha256), Some(sha256(&expected)));
    let (status, body) = http_get(c.server.http, &format!("/api/v1/runs/{}/input", run.id)).unwrap();
    assert_eq!((status, sha256(&body)), (200, input_ref.sha256.clone()));

    // PostgreSQL holds references only.
    let sizes = row_sizes(c, &run.id).await;
    assert_eq!(sizes.len(), 5, "a run, two tasks, two attempts: {sizes:?}");
    for (what, row, payload) in &sizes {
        eprintln!("{what}: row {row} bytes, payload columns {payload} bytes");
        assert!(*row < SMALL_ROW, "{what} row is {row} bytes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_mib_payloads_flow_between_rust_and_python_while_postgres_stays_small() {
    let objects = tempfile::tempdir().unwrap();
    let store = format!("file://{}", objects.path().display());
    let c = Cluster::start_with(&["--object-store", &store]).await;
    c.apply(DAG);

    // Rust produces, Python consumes.
    let rs = c.worker("rs-blob", 2, "blob", &[]);
    let py = python(&c, "py-digest", "digest");
    five_mib_flow(&c, 7, "rust", "python").await;
    drop((rs, py));

    // Python produces, Rust consumes.
    let py = python(&c, "py-blob", "blob");
    let rs = c.worker("rs-digest", 2, "digest", &[]);
    five_mib_flow(&c, 11, "python", "rust").await;
    drop((rs, py));

    // The objects are files under the run's prefix, named by their checksum.
    let runs = std::fs::read_dir(objects.path().join("default/runs")).unwrap().count();
    assert_eq!(runs, 2, "one directory per run");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_object_fails_the_dependent_and_reads_say_why() {
    let objects = tempfile::tempdir().unwrap();
    let store = format!("file://{}", objects.path().display());
    let c = Cluster::start_with(&["--object-store", &store]).await;
    c.apply(DAG);
    let _blob = c.worker("rs-blob", 1, "blob", &[]);
    let run = trigger(&c, &json!({"bytes": 300_000, "seed": 3})).await;
    assert!(run.input_ref.is_none(), "a small input stays inline");

    // Wait until a has succeeded (no digest worker yet, so b waits), then damage its object.
    let deadline = Instant::now() + Duration::from_secs(30);
    let a_ref = loop {
        let got = c.get(&run.id).await;
        if let Some(r) = task(&got, "a").output_ref.clone() {
            break r;
        }
        assert!(Instant::now() < deadline, "a did not succeed: {got:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let path = objects.path().join(format!("default/runs/{}/{}", run.id, a_ref.sha256));
    let mut bytes = std::fs::read(&path).expect("the object is a file named by its checksum");
    assert_eq!(bytes.len() as u64, a_ref.size);
    bytes[1000] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let damaged = hex::encode(Sha256::digest(&bytes));

    let _digest = c.worker("rs-digest", 1, "digest", &[]);
    let done = c.finish(&run.id).await;
    assert_eq!(done.state, pb::RunState::Failed as i32, "{done:?}");
    let b = task(&done, "b");
    assert_eq!(b.state, pb::TaskState::Failed as i32);
    let e = b.last_error.as_ref().expect("b's error");
    assert_eq!(e.r#type, "payload_corrupt");
    assert!(!e.retryable);
    for part in ["dependency a", &a_ref.sha256, &damaged] {
        assert!(e.message.contains(part), "{:?} lacks {part}", e.message);
    }
    assert_eq!(b.attempts.len(), 1, "not retried");
    let ledger = braid_e2e::ledger_lines(&c.ledger("rs-digest"));
    assert!(ledger.iter().all(|l| l["event"] != "start"), "the digest worker never got the task: {ledger:?}");

    // Reads that need the bytes refuse with the reason; GetRun (references only) still answers.
    let (status, body) = http_get(c.server.http, &format!("/api/v1/runs/{}/tasks/a/output", run.id)).unwrap();
    assert_eq!(status, 500, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "data_loss");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains(&damaged)), "{body}");
    c.stop().await;
}
