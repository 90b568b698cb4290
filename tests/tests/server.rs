//! `braid server` end to end on PostgreSQL and Redis: config errors, schema checks, migrate, serve.

use braid_e2e::{Braid, braid, stderr, stdout};
use braid_proto::v1 as pb;
use std::time::Duration;

fn redis_url() -> String {
    std::env::var("REDIS_URL").expect("REDIS_URL must be set; run the tests via scripts/test")
}

#[test]
fn an_invalid_config_lists_every_problem_and_binds_nothing() {
    let out = braid(&["server", "--grpc-listen", "nowhere", "--redis-url", "http://x"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("invalid configuration"), "{err}");
    assert!(err.contains("grpc_listen: \"nowhere\""), "{err}");
    assert!(err.contains("database_url: required"), "{err}");
    assert!(err.contains("redis_url: \"http://x\" is not a Redis URL"), "{err}");
    assert!(!stdout(&out).contains("gRPC"), "nothing may be bound");
}

#[tokio::test]
async fn the_server_refuses_an_old_schema_then_serves_after_migrate() {
    let (db, url) = braid_migrations::testing::fresh_postgres().await;
    let redis = redis_url();
    let args = [
        "server",
        "--insecure",
        "--database-url",
        &url,
        "--redis-url",
        &redis,
        "--grpc-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
    ];
    let refused = braid(&args);
    assert!(!refused.status.success());
    let err = stderr(&refused);
    assert!(err.contains("schema is older") && err.contains("braid migrate"), "{err}");

    let migrated = braid(&["migrate", "--database-url", &url]);
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    assert!(stdout(&migrated).contains("applied m20261130_000001_initial"));
    let again = braid(&["migrate", "--database-url", &url]);
    assert_eq!(stdout(&again).trim(), "schema is up to date");

    let server = Braid::start(&args, &[]);
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest { service: "braid.v1.WorkflowService".into() })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    let mut workflows = pb::workflow_service_client::WorkflowServiceClient::new(server.channel().await);
    let def = pb::WorkflowDefinition {
        name: "pg".into(),
        tasks: vec![pb::TaskDefinition { name: "only".into(), task_type: "noop".into(), ..Default::default() }],
        ..Default::default()
    };
    let put = workflows.put_workflow(pb::PutWorkflowRequest { definition: Some(def) }).await.unwrap().into_inner();
    assert_eq!(put.workflow.unwrap().version, 1);
    let mut runs = pb::run_service_client::RunServiceClient::new(server.channel().await);
    let run = runs
        .trigger_run(pb::TriggerRunRequest { workflow_name: "pg".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap();
    assert_eq!(run.tasks.len(), 1);
    assert_eq!(run.tasks[0].state, pb::TaskState::Ready as i32);
    drop((health, workflows, runs));
    let status = server.terminate(Duration::from_secs(15));
    assert!(status.success(), "SIGTERM should stop the server cleanly, got {status}");
    braid_migrations::testing::drop_postgres(db, &url).await;
}
