//! `braid dev` end to end: no outside services, reflection and health, the CLI's authoring and run verbs.

use braid_e2e::{Braid, braid, repo_root, start_dev, start_dev_with_demo, stderr, stdout, tool};
use braid_proto::v1 as pb;
use std::process::Command;
use std::time::Duration;

fn grpcurl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(tool("GRPCURL")).args(args).output().expect("run grpcurl");
    (out.status.success(), stdout(&out), stderr(&out))
}

fn example(name: &str) -> String {
    repo_root().join("docs/examples").join(name).to_string_lossy().into_owned()
}

#[test]
fn grpcurl_lists_every_service_and_health_answers_serving() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start_dev(dir.path());
    let addr = dev.grpc.to_string();
    let (ok, out, err) = grpcurl(&["-plaintext", &addr, "list"]);
    assert!(ok, "grpcurl list failed: {err}");
    for service in [
        "braid.v1.AdminService",
        "braid.v1.RunService",
        "braid.v1.ScheduleService",
        "braid.v1.WorkerService",
        "braid.v1.WorkflowService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(out.lines().any(|l| l.trim() == service), "{service} missing from:\n{out}");
    }
    for service in ["", "braid.v1.RunService"] {
        let body = format!(r#"{{"service":"{service}"}}"#);
        let (ok, out, err) = grpcurl(&["-plaintext", "-d", &body, &addr, "grpc.health.v1.Health/Check"]);
        assert!(ok, "health check failed: {err}");
        assert!(out.contains("SERVING"), "{out}");
    }
    // Reflection carries the message types too: grpcurl can build a request from JSON.
    let (ok, out, err) = grpcurl(&[
        "-plaintext",
        "-d",
        r#"{"definition":{"name":"g","tasks":[{"name":"a","taskType":"t"}]}}"#,
        &addr,
        "braid.v1.WorkflowService/PutWorkflow",
    ]);
    assert!(ok, "PutWorkflow through grpcurl failed: {err}");
    assert!(out.contains("\"version\": 1"), "{out}");
    let status = dev.terminate(Duration::from_secs(15));
    assert!(status.success(), "braid dev should exit cleanly on SIGTERM, got {status}");
}

#[test]
fn a_broken_dag_lists_every_problem_with_its_path_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start_dev(dir.path());
    let ep = dev.endpoint();
    let out = braid(&["workflow", "apply", "-f", &example("broken.yaml"), "--endpoint", &ep]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("2 problems"), "{err}");
    assert!(err.contains("tasks[0].depends_on[0]: cycle: a -> b -> c -> a") || err.contains("cycle: "), "{err}");
    assert!(err.contains("tasks[2].depends_on[1]: unknown task \"missing\""), "{err}");
    let list = braid(&["workflow", "list", "--endpoint", &ep, "--output", "json"]);
    assert!(list.status.success(), "{}", stderr(&list));
    assert_eq!(stdout(&list).trim(), "[]", "nothing is stored");
}

#[test]
fn applying_twice_keeps_the_version_and_a_change_makes_version_two() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start_dev(dir.path());
    let ep = dev.endpoint();
    let file = example("thumbnails.yaml");
    let first = braid(&["workflow", "apply", "-f", &file, "--endpoint", &ep]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(stdout(&first).trim(), "workflow thumbnails version 1 created");
    let again = braid(&["workflow", "apply", "-f", &file, "--endpoint", &ep]);
    assert_eq!(stdout(&again).trim(), "workflow thumbnails version 1 unchanged (same content)");
    let changed_path = dir.path().join("changed.yaml");
    let changed = std::fs::read_to_string(&file).unwrap().replace("timeout: 30s", "timeout: 45s");
    std::fs::write(&changed_path, changed).unwrap();
    let v2 = braid(&["workflow", "apply", "-f", changed_path.to_str().unwrap(), "--endpoint", &ep]);
    assert_eq!(stdout(&v2).trim(), "workflow thumbnails version 2 created", "{}", stderr(&v2));
}

#[test]
fn runs_start_with_an_idempotency_key_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start_dev(dir.path());
    let ep = dev.endpoint();
    assert!(braid(&["workflow", "apply", "-f", &example("thumbnails.yaml"), "--endpoint", &ep]).status.success());
    let start = |input: &str| {
        braid(&[
            "run",
            "start",
            "thumbnails",
            "--input",
            input,
            "--idempotency-key",
            "k-1",
            "--endpoint",
            &ep,
            "--output",
            "json",
        ])
    };
    let first = start(r#"{"url":"a.png"}"#);
    assert!(first.status.success(), "{}", stderr(&first));
    let first: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(first["created"], true);
    assert_eq!(first["state"], "running");
    let id = first["id"].as_str().unwrap().to_owned();
    let again: serde_json::Value = serde_json::from_slice(&start(r#"{"url":"a.png"}"#).stdout).unwrap();
    assert_eq!(again["created"], false);
    assert_eq!(again["id"], id.as_str());
    let clash = start(r#"{"url":"b.png"}"#);
    assert!(!clash.status.success());
    assert!(stderr(&clash).contains("AlreadyExists"), "{}", stderr(&clash));

    let got = braid(&["run", "get", &id, "--endpoint", &ep]);
    let text = stdout(&got);
    assert!(text.contains("fetch    http-get  ready"), "{text}");
    assert!(text.contains("publish  upload    pending"), "{text}");
    let list = braid(&["run", "list", "--endpoint", &ep]);
    assert!(stdout(&list).contains(&id));
}

#[tokio::test]
async fn admin_and_schedule_rpcs_answer_and_errors_carry_their_codes() {
    let dir = tempfile::tempdir().unwrap();
    let dev: Braid = start_dev(dir.path());
    let mut runs = pb::run_service_client::RunServiceClient::new(dev.channel().await);
    let mut admin = pb::admin_service_client::AdminServiceClient::new(dev.channel().await);
    // Queues are built: no task and no worker yet, so no queue.
    let queues = admin.list_queues(pb::ListQueuesRequest::default()).await.unwrap().into_inner();
    assert!(queues.queues.is_empty(), "{queues:?}");
    let mut schedules = pb::schedule_service_client::ScheduleServiceClient::new(dev.channel().await);
    // Schedules are built: the list answers (empty).
    let listed = schedules.list_schedules(pb::ListSchedulesRequest::default()).await.unwrap().into_inner();
    assert!(listed.schedules.is_empty());
    let err = runs
        .cancel_run(pb::CancelRunRequest { run_id: uuid::Uuid::nil().to_string(), reason: String::new() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    // A bad run id is an invalid argument, an unknown one is not found.
    let err = runs.get_run(pb::GetRunRequest { run_id: "nope".into() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let err = runs.get_run(pb::GetRunRequest { run_id: uuid::Uuid::nil().to_string() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn braid_dev_runs_its_demo_workflow_to_success_with_no_other_process() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start_dev_with_demo(dir.path());
    let mut runs = pb::run_service_client::RunServiceClient::new(dev.channel().await);
    let list = pb::ListRunsRequest { workflow_name: "braid-demo".into(), ..Default::default() };
    let found = runs.list_runs(list).await.unwrap().into_inner().runs;
    assert_eq!(found.len(), 1, "braid dev triggers one demo run at start");
    let id = found[0].id.clone();
    let watch = async {
        let req = pb::WatchRunRequest { run_id: id.clone(), after_sequence: 0 };
        let mut stream = runs.watch_run(req).await.unwrap().into_inner();
        let mut kinds = Vec::new();
        while let Some(m) = stream.message().await.unwrap() {
            kinds.push(m.event.unwrap().kind);
        }
        kinds
    };
    let kinds = tokio::time::timeout(Duration::from_secs(30), watch).await.expect("the demo run finishes within 30s");
    assert_eq!(kinds.last().map(String::as_str), Some("run_succeeded"), "{kinds:?}");
    let run = runs.get_run(pb::GetRunRequest { run_id: id }).await.unwrap().into_inner().run.unwrap();
    assert_eq!(run.state, pb::RunState::Succeeded as i32);
    assert_eq!(run.output_json, r#"{"report":{"sums":{"double":30,"negate":-15,"square":55}}}"#);
    let mut admin = pb::admin_service_client::AdminServiceClient::new(dev.channel().await);
    let workers = admin.list_workers(pb::ListWorkersRequest::default()).await.unwrap().into_inner().workers;
    assert_eq!(workers.len(), 1, "{workers:?}");
    assert_eq!((workers[0].name.as_str(), workers[0].sdk_language.as_str()), ("braid-dev-demo", "rust"));
    assert_eq!((workers[0].slots, workers[0].free_slots), (4, 4), "an idle worker has every slot free");
    drop(admin);
    let (code, page) = braid_e2e::http_get(dev.http, "/").unwrap();
    assert_eq!(code, 200, "braid dev serves the dashboard at /");
    assert!(page.contains("/ui/app.js"), "{page}");
    let (code, body) = braid_e2e::http_get(dev.http, "/api/v1/runs?workflow=braid-demo").unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""state":"succeeded""#), "{body}");
    let status = dev.terminate(Duration::from_secs(20));
    assert!(status.success(), "braid dev should exit cleanly on SIGTERM, got {status}");
}
