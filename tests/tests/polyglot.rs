//! One workflow, four languages: `a` (Python) -> `b` (TypeScript) and `c` (Go) -> `d` (Rust),
//! each transforming what it got from its dependencies, on PostgreSQL and Redis.

use braid_e2e::cluster::Cluster;
use braid_e2e::{ExampleWorker, repo_root, tool};
use braid_proto::v1 as pb;
use serde_json::json;
use std::collections::HashMap;
use std::process::Command;

fn host_port(c: &Cluster) -> String {
    c.server.grpc.to_string()
}

fn python(c: &Cluster) -> ExampleWorker {
    let mut cmd = Command::new(tool("BRAID_PYTHON"));
    cmd.arg(repo_root().join("clients/python/examples/example_worker.py"));
    language(c, cmd, "py", "py-a", "--")
}

fn typescript(c: &Cluster) -> ExampleWorker {
    let mut cmd = Command::new(tool("BRAID_NODE"));
    cmd.arg(repo_root().join("clients/typescript/dist/examples/example-worker.js"));
    language(c, cmd, "ts", "ts-b", "--")
}

fn go(c: &Cluster) -> ExampleWorker {
    language(c, Command::new(tool("BRAID_GO_WORKER_BIN")), "go", "go-c", "-")
}

fn language(c: &Cluster, mut cmd: Command, name: &str, types: &str, dash: &str) -> ExampleWorker {
    let ledger = c.ledger(name);
    let flag = |f: &str| format!("{dash}{f}");
    cmd.arg(flag("endpoint")).arg(host_port(c));
    cmd.arg(flag("name")).arg(name);
    cmd.arg(flag("slots")).arg("2");
    cmd.arg(flag("types")).arg(types);
    cmd.arg(flag("ledger")).arg(&ledger);
    ExampleWorker::spawn(cmd, name, &ledger)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_languages_serve_one_dag() {
    let c = Cluster::start().await;
    let _py = python(&c);
    let _ts = typescript(&c);
    let _go = go(&c);
    let _rs = c.worker("rs", 2, "rs-d", &[]);
    c.apply(
        "name: polyglot\ntasks:\n  - {name: a, task_type: py-a}\n  - {name: b, task_type: ts-b, depends_on: [a]}\n  - {name: c, task_type: go-c, depends_on: [a]}\n  - {name: d, task_type: rs-d, depends_on: [b, c]}\n",
    );
    let id = c.trigger("polyglot", json!({"value": 3})).await;
    let run = c.finish(&id).await;
    assert_eq!(run.state, pb::RunState::Succeeded as i32, "{run:?}");
    // a: 3*2 = 6; b: 6+10 = 16; c: 6*6 = 36; d: 16+36 = 52.
    let output: serde_json::Value = serde_json::from_str(&run.output_json).unwrap();
    assert_eq!(
        output,
        json!({"d": {"value": 52, "paths": [["python", "typescript"], ["python", "go"]]}}),
        "the final output is exactly what the chain implies"
    );
    // Each task ran on the worker of its language.
    let mut admin = pb::admin_service_client::AdminServiceClient::new(c.server.channel().await);
    let workers = admin.list_workers(pb::ListWorkersRequest::default()).await.unwrap().into_inner().workers;
    let language: HashMap<String, String> = workers.into_iter().map(|w| (w.id, w.sdk_language)).collect();
    for (task, lang) in [("a", "python"), ("b", "typescript"), ("c", "go"), ("d", "rust")] {
        let t = run.tasks.iter().find(|t| t.name == task).unwrap();
        let worker = &t.attempts.last().unwrap().worker_id;
        assert_eq!(language.get(worker).map(String::as_str), Some(lang), "task {task} ran on {worker}");
    }
    c.stop().await;
}
