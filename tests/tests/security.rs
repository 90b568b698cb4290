//! Auth, tenancy and quotas through real `braid server` processes (auth on, as by default), PostgreSQL, Redis and example workers: tenants see only their own runs and tasks, even through ids nested in requests; each role is refused what it may not do; a revoked worker token's stream closes and its lease goes back to the queue; a tenant over a quota is refused while another is served; `braid dev` prints an admin token.

use braid_e2e::cluster::Cluster;
use braid_e2e::{ExampleWorker, braid, http_get, start_dev_secure, stderr, stdout};
use braid_proto::v1 as pb;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

const FLOW: &str = "tasks:\n  - {name: s, task_type: sleep}\n";
const FRAGILE: &str = "tasks:\n  - {name: f, task_type: fail, retry: {max_attempts: 1}}\n";

/// Adds `authorization: Bearer …` (or nothing) to every call.
#[derive(Debug, Clone)]
struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// A channel whose calls carry `token` (or no credentials).
async fn as_token(c: &Cluster, token: Option<&str>) -> Authed {
    let value = token.map(|t| format!("Bearer {t}").parse().unwrap());
    InterceptedService::new(c.server.channel().await, Bearer(value))
}

fn runs(ch: &Authed) -> pb::run_service_client::RunServiceClient<Authed> {
    pb::run_service_client::RunServiceClient::new(ch.clone())
}

fn admin(ch: &Authed) -> pb::admin_service_client::AdminServiceClient<Authed> {
    pb::admin_service_client::AdminServiceClient::new(ch.clone())
}

/// `braid workflow apply` of `name` with `body`, as `token`.
fn apply(c: &Cluster, token: &str, name: &str, body: &str) {
    let path = c.dir.path().join(format!("{name}.yaml"));
    std::fs::write(&path, format!("name: {name}\n{body}")).unwrap();
    let ep = c.server.endpoint();
    let out = braid(&["workflow", "apply", "-f", path.to_str().unwrap(), "--endpoint", &ep, "--token", token]);
    assert!(out.status.success(), "{}", stderr(&out));
}

async fn trigger(ch: &Authed, workflow: &str, input: serde_json::Value) -> String {
    let req =
        pb::TriggerRunRequest { workflow_name: workflow.into(), input_json: input.to_string(), ..Default::default() };
    runs(ch).trigger_run(req).await.unwrap().into_inner().run.unwrap().id
}

async fn run_state(ch: &Authed, id: &str) -> pb::Run {
    runs(ch).get_run(pb::GetRunRequest { run_id: id.into() }).await.unwrap().into_inner().run.unwrap()
}

/// Waits (bounded) until run `id` has state `want`.
async fn wait_state(ch: &Authed, id: &str, want: pb::RunState) -> pb::Run {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = run_state(ch, id).await;
        if r.state() == want {
            return r;
        }
        assert!(Instant::now() < deadline, "run {id} stayed {:?}, wanted {want:?}", r.state());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The code of a refusal (printing its message, so a wrong refusal says why).
fn code<T: std::fmt::Debug>(r: Result<T, Status>) -> Code {
    match r {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(s) => {
            println!("refused: {:?} {}", s.code(), s.message());
            s.code()
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_see_only_their_own_runs_tasks_and_dead_letters() {
    let c = Cluster::start_secure().await;
    let (a_op, b_op) = (c.token("acme", "operator"), c.token("bravo", "operator"));
    let (a_worker, b_worker) = (c.token("acme", "worker"), c.token("bravo", "worker"));
    let (a, b) = (as_token(&c, Some(&a_op)).await, as_token(&c, Some(&b_op)).await);
    apply(&c, &a_op, "flow", FLOW);
    apply(&c, &b_op, "flow", FLOW);
    apply(&c, &b_op, "fragile", FRAGILE);

    // An acme worker serves acme's queue only: bravo's task waits until a bravo worker comes.
    let _wa = ExampleWorker::start(
        &c.server.endpoint(),
        "acme-w",
        4,
        "sleep,fail",
        &c.ledger("acme-w"),
        &["--token", &a_worker],
    );
    let ra = trigger(&a, "flow", json!({"ms": 10})).await;
    let rb = trigger(&b, "flow", json!({"ms": 10})).await;
    wait_state(&a, &ra, pb::RunState::Succeeded).await;
    let waiting = run_state(&b, &rb).await;
    assert_eq!(waiting.tasks[0].state(), pb::TaskState::Ready, "bravo's task waits for a bravo worker");
    let _wb = ExampleWorker::start(
        &c.server.endpoint(),
        "bravo-w",
        4,
        "sleep,fail",
        &c.ledger("bravo-w"),
        &["--token", &b_worker],
    );
    wait_state(&b, &rb, pb::RunState::Succeeded).await;
    let dead_run = trigger(&b, "fragile", json!({"times": 1})).await;
    wait_state(&b, &dead_run, pb::RunState::Failed).await;
    let b_dead = admin(&b).list_dead_letters(pb::ListDeadLettersRequest::default()).await.unwrap().into_inner();
    assert_eq!(b_dead.dead_letters.len(), 1);

    // Acme cannot read, cancel, watch or redrive bravo's by id: NOT_FOUND, as for an id that does not exist.
    let get = runs(&a).get_run(pb::GetRunRequest { run_id: rb.clone() }).await;
    assert_eq!(code(get), Code::NotFound);
    let cancel = runs(&a).cancel_run(pb::CancelRunRequest { run_id: dead_run.clone(), ..Default::default() }).await;
    assert_eq!(code(cancel), Code::NotFound);
    let watch = runs(&a).watch_run(pb::WatchRunRequest { run_id: rb.clone(), after_sequence: 0 }).await;
    match watch {
        Err(s) => assert_eq!(s.code(), Code::NotFound),
        Ok(stream) => {
            let first = stream.into_inner().next().await.expect("an answer");
            assert_eq!(first.expect_err("no event of another tenant").code(), Code::NotFound);
        }
    }
    // Nested ids: a redrive naming bravo's dead letter, a schedule of bravo's workflow, a trigger of it.
    let redrive = pb::RedriveDeadLettersRequest { ids: vec![b_dead.dead_letters[0].id.clone()], ..Default::default() };
    assert_eq!(code(admin(&a).redrive_dead_letters(redrive).await), Code::NotFound);
    let mut sched = pb::schedule_service_client::ScheduleServiceClient::new(a.clone());
    let spec = pb::Schedule {
        name: "nightly".into(),
        workflow_name: "fragile".into(),
        cron: "0 * * * *".into(),
        input_json: "{}".into(),
        ..Default::default()
    };
    assert_eq!(code(sched.create_schedule(pb::CreateScheduleRequest { schedule: Some(spec) }).await), Code::NotFound);
    let req = pb::TriggerRunRequest { workflow_name: "fragile".into(), ..Default::default() };
    assert_eq!(code(runs(&a).trigger_run(req).await), Code::NotFound);
    // Lists show only the caller's tenant.
    let listed = runs(&a).list_runs(pb::ListRunsRequest::default()).await.unwrap().into_inner().runs;
    assert_eq!(listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [ra.as_str()]);
    assert!(
        admin(&a)
            .list_dead_letters(pb::ListDeadLettersRequest::default())
            .await
            .unwrap()
            .into_inner()
            .dead_letters
            .is_empty()
    );
    let workers = admin(&a).list_workers(pb::ListWorkersRequest::default()).await.unwrap().into_inner().workers;
    assert_eq!(workers.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(), ["acme-w"]);
    // The same over HTTP: the dashboard's API answers 404 for bravo's run, 401 without a token.
    let (status, _) = http_get(c.server.http, &format!("/api/v1/runs/{rb}")).unwrap();
    assert_eq!(status, 401);
    let bravo_seen_by_acme = http_get_token(c.server.http, &format!("/api/v1/runs/{rb}"), &a_op);
    assert_eq!(bravo_seen_by_acme.0, 404, "{}", bravo_seen_by_acme.1);
    let mine = http_get_token(c.server.http, "/api/v1/runs", &a_op);
    assert!(mine.1.contains(&ra) && !mine.1.contains(&rb), "{}", mine.1);
    c.stop().await;
}

/// GET with a bearer token over HTTP/1.0.
fn http_get_token(addr: std::net::SocketAddr, path: &str, token: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (head.split_whitespace().nth(1).unwrap().parse().unwrap(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn each_role_is_refused_what_it_may_not_do() {
    let c = Cluster::start_secure().await;
    let tokens: Vec<(&str, String)> =
        ["admin", "operator", "worker", "read-only"].iter().map(|r| (*r, c.token("acme", r))).collect();
    let t = |role: &str| tokens.iter().find(|(r, _)| *r == role).unwrap().1.clone();
    apply(&c, &t("operator"), "flow", FLOW);
    let op = as_token(&c, Some(&t("operator"))).await;
    let run = trigger(&op, "flow", json!({"ms": 10})).await;

    let none = as_token(&c, None).await;
    assert_eq!(code(runs(&none).get_run(pb::GetRunRequest { run_id: run.clone() }).await), Code::Unauthenticated);
    let forged = as_token(&c, Some("brd_0000000000000000000000000000000000000000000")).await;
    assert_eq!(code(runs(&forged).get_run(pb::GetRunRequest { run_id: run.clone() }).await), Code::Unauthenticated);

    let worker = as_token(&c, Some(&t("worker"))).await;
    assert_eq!(code(runs(&worker).get_run(pb::GetRunRequest { run_id: run.clone() }).await), Code::PermissionDenied);
    let trig = pb::TriggerRunRequest { workflow_name: "flow".into(), ..Default::default() };
    assert_eq!(code(runs(&worker).trigger_run(trig.clone()).await), Code::PermissionDenied);

    let ro = as_token(&c, Some(&t("read-only"))).await;
    assert_eq!(run_state(&ro, &run).await.id, run, "read-only may read");
    assert_eq!(code(runs(&ro).trigger_run(trig.clone()).await), Code::PermissionDenied);
    let cancel = pb::CancelRunRequest { run_id: run.clone(), ..Default::default() };
    assert_eq!(code(runs(&ro).cancel_run(cancel).await), Code::PermissionDenied);
    let purge = || pb::PurgeDeadLettersRequest { filter: Some(pb::DeadLetterFilter::default()), ..Default::default() };
    assert_eq!(code(admin(&ro).purge_dead_letters(purge()).await), Code::PermissionDenied);
    // A worker stream needs a worker (or admin) token.
    let mut ws = pb::worker_service_client::WorkerServiceClient::new(ro.clone());
    let hello = pb::ConnectRequest {
        message: Some(pb::connect_request::Message::Hello(pb::Hello {
            worker_name: "x".into(),
            task_types: vec!["sleep".into()],
            slots: 1,
            ..Default::default()
        })),
    };
    assert_eq!(code(ws.connect(tokio_stream::iter(vec![hello])).await), Code::PermissionDenied);

    // Operators run things but do not destroy; admins may.
    assert_eq!(code(admin(&op).purge_dead_letters(purge()).await), Code::PermissionDenied);
    let adm = as_token(&c, Some(&t("admin"))).await;
    admin(&adm).purge_dead_letters(purge()).await.expect("an admin may purge");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_worker_token_closes_its_stream_and_its_lease_returns() {
    let c = Cluster::start_secure().await;
    let op_token = c.token("acme", "operator");
    let op = as_token(&c, Some(&op_token)).await;
    apply(&c, &op_token, "flow", FLOW);
    let worker_token = c.token("acme", "worker");
    let listed = c.admin(&["token", "list", "--tenant", "acme"]);
    let worker_id =
        listed.lines().find(|l| l.contains(" worker ")).unwrap().split_whitespace().next().unwrap().to_owned();

    // A hand-driven worker takes the task and never finishes it.
    let ch = as_token(&c, Some(&worker_token)).await;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let hello =
        pb::Hello { worker_name: "zombie".into(), task_types: vec!["sleep".into()], slots: 1, ..Default::default() };
    tx.send(pb::ConnectRequest { message: Some(pb::connect_request::Message::Hello(hello)) }).unwrap();
    let mut ws = pb::worker_service_client::WorkerServiceClient::new(ch);
    let mut stream = ws.connect(tokio_stream::wrappers::UnboundedReceiverStream::new(rx)).await.unwrap().into_inner();
    let run = trigger(&op, "flow", json!({"ms": 60_000})).await;
    let task_id = loop {
        let m = stream.message().await.unwrap().expect("the stream stays open").message;
        if let Some(pb::connect_response::Message::Assignment(a)) = m {
            break a.task_id;
        }
    };
    assert_eq!(run_state(&op, &run).await.tasks[0].state(), pb::TaskState::Leased);

    let revoked_at = Instant::now();
    let out = c.admin(&["token", "revoke", &worker_id]);
    assert!(out.contains("revoked"), "{out}");
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(s) => return Some(s),
            }
        }
    })
    .await
    .expect("the revoked worker's stream closes within 5 s");
    let status = ended.expect("the stream ends with a status");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    println!("stream closed {:?} after the revocation: {}", revoked_at.elapsed(), status.message());

    // Its lease went back to the queue: a worker with a valid token gets the task.
    let fresh = c.token("acme", "worker");
    let _w = ExampleWorker::start(&c.server.endpoint(), "heir", 1, "sleep", &c.ledger("heir"), &["--token", &fresh]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let t = &run_state(&op, &run).await.tasks[0];
        if t.state() == pb::TaskState::Leased && t.id == task_id && t.attempts.len() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the released task was not leased again: {t:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.stop().await;
}

#[test]
fn braid_dev_prints_an_admin_token_and_the_cli_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start_dev_secure(dir.path());
    let lines = dev.wait_lines(|l| l.starts_with("Token "));
    let token = lines.iter().find_map(|l| l.strip_prefix("Token ")).unwrap().trim().to_owned();
    assert!(token.starts_with("brd_"), "{token}");
    let ep = dev.endpoint();
    let refused = braid(&["workflow", "list", "--endpoint", &ep]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("Unauthenticated"), "{}", stderr(&refused));
    let listed = braid(&["workflow", "list", "--endpoint", &ep, "--token", &token]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(stdout(&listed).contains("braid-demo"), "{}", stdout(&listed));
    // The same token is printed again on the next start (kept in the data dir, mode 0600).
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("admin-token")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let status = dev.terminate(Duration::from_secs(20));
    assert!(status.success());
}

fn hello(name: &str) -> pb::ConnectRequest {
    pb::ConnectRequest {
        message: Some(pb::connect_request::Message::Hello(pb::Hello {
            worker_name: name.into(),
            task_types: vec!["sleep".into()],
            slots: 1,
            ..Default::default()
        })),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_over_its_quotas_is_refused_while_another_is_served() {
    use tonic_types::StatusExt;
    let c = Cluster::start_secure().await;
    let (a_op, b_op) = (c.token("acme", "operator"), c.token("bravo", "operator"));
    let quota = c.admin(&[
        "tenant",
        "quota",
        "acme",
        "--triggers-per-second",
        "5",
        "--trigger-burst",
        "5",
        "--workers",
        "1",
        "--schedules",
        "1",
    ]);
    assert!(quota.contains("5 triggers/s (bursts of 5)"), "{quota}");
    apply(&c, &a_op, "flow", FLOW);
    apply(&c, &b_op, "flow", FLOW);
    let (a, b) = (as_token(&c, Some(&a_op)).await, as_token(&c, Some(&b_op)).await);

    // A burst of 20 triggers each: acme gets its bucket's 5 (and what refills meanwhile), the rest
    // RESOURCE_EXHAUSTED with a retry delay; every one of bravo's succeeds.
    let burst = |ch: Authed| async move {
        let calls = (0..20).map(|_| {
            let ch = ch.clone();
            async move {
                let req = pb::TriggerRunRequest {
                    workflow_name: "flow".into(),
                    input_json: "{}".into(),
                    ..Default::default()
                };
                runs(&ch).trigger_run(req).await
            }
        });
        futures::future::join_all(calls).await
    };
    let (a_res, b_res) = tokio::join!(burst(a.clone()), burst(b.clone()));
    assert!(b_res.iter().all(Result::is_ok), "bravo is not limited by acme's quota: {b_res:?}");
    let admitted = a_res.iter().filter(|r| r.is_ok()).count();
    assert!((5..=7).contains(&admitted), "acme admitted {admitted} of 20");
    let refused = a_res.iter().find_map(|r| r.as_ref().err()).expect("some acme triggers are refused");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("trigger rate"), "{}", refused.message());
    let delay = refused.get_details_retry_info().and_then(|r| r.retry_delay).expect("a retry delay");
    assert!(delay <= Duration::from_secs(1), "{delay:?}");

    // Workers: acme may connect one.
    let a_worker = c.token("acme", "worker");
    let _w =
        ExampleWorker::start(&c.server.endpoint(), "acme-1", 1, "sleep", &c.ledger("acme-1"), &["--token", &a_worker]);
    let mut ws = pb::worker_service_client::WorkerServiceClient::new(as_token(&c, Some(&a_worker)).await);
    let second = ws.connect(tokio_stream::iter(vec![hello("acme-2")])).await;
    assert_eq!(code(second), Code::ResourceExhausted);

    // Schedules: acme may have one.
    let mut sched = pb::schedule_service_client::ScheduleServiceClient::new(a.clone());
    let spec = |name: &str| pb::CreateScheduleRequest {
        schedule: Some(pb::Schedule {
            name: name.into(),
            workflow_name: "flow".into(),
            cron: "0 * * * *".into(),
            input_json: "{}".into(),
            ..Default::default()
        }),
    };
    sched.create_schedule(spec("first")).await.expect("the first schedule fits");
    assert_eq!(code(sched.create_schedule(spec("second")).await), Code::ResourceExhausted);

    // Concurrent runs: with room for 2 open runs (and no worker of its task type), a third waits outside.
    let carol_op = c.token("carol", "operator");
    c.admin(&["tenant", "quota", "carol", "--concurrent-runs", "2"]);
    apply(&c, &carol_op, "flow", FLOW);
    let carol = as_token(&c, Some(&carol_op)).await;
    trigger(&carol, "flow", json!({})).await;
    trigger(&carol, "flow", json!({})).await;
    let third = runs(&carol)
        .trigger_run(pb::TriggerRunRequest {
            workflow_name: "flow".into(),
            input_json: "{}".into(),
            ..Default::default()
        })
        .await;
    let status = third.expect_err("a third open run is over the quota");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.message().contains("2 runs queued or running"), "{}", status.message());
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_open_by_default_and_can_need_a_token() {
    let open = Cluster::start_secure().await;
    assert_eq!(http_get(open.server.http, "/metrics").unwrap().0, 200, "open by default, like /healthz");
    open.stop().await;
    let c = Cluster::start_secure_with(&["--metrics-need-token"]).await;
    assert_eq!(http_get(c.server.http, "/metrics").unwrap().0, 401);
    assert_eq!(http_get(c.server.http, "/healthz").unwrap().0, 200, "health stays open");
    let (status, body) = http_get_token(c.server.http, "/metrics", &c.token("ops", "read-only"));
    assert_eq!(status, 200);
    assert!(body.contains("braid_build_info"), "{body}");
    assert_eq!(http_get_token(c.server.http, "/metrics", &c.token("ops", "worker")).0, 403);
    c.stop().await;
}
