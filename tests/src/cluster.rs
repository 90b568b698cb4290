//! A throwaway Braid cluster for end-to-end tests: `braid server` on a fresh PostgreSQL
//! database and its own Redis database, plus helpers to apply, trigger and follow runs.

use crate::{Braid, ExampleWorker, braid, stderr};
use braid_proto::v1 as pb;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tempfile::TempDir;

/// Each test gets its own Redis database (1..15) so streams do not mix.
static REDIS_DB: AtomicUsize = AtomicUsize::new(1);
const LEASE_TTL: &str = "1500ms";
const RUN_DEADLINE: Duration = Duration::from_secs(45);

/// A `braid server` on a fresh PostgreSQL database and its own Redis database, with helpers.
pub struct Cluster {
    db: Option<sea_orm::DatabaseConnection>,
    db_url: String,
    pub redis_url: String,
    pub server: Braid,
    pub dir: TempDir,
    /// Whether calls need tokens (`Cluster::start_secure`).
    secure: bool,
}

impl Cluster {
    /// A cluster with auth off (`--insecure`): every call acts as an admin of tenant "default".
    pub async fn start() -> Self {
        Self::start_opts(false, &[]).await
    }

    /// A cluster with auth on, as `braid server` runs by default: calls need tokens (`admin`).
    pub async fn start_secure() -> Self {
        Self::start_opts(true, &[]).await
    }

    /// A cluster with auth on whose server also takes `server_args`.
    pub async fn start_secure_with(server_args: &[&str]) -> Self {
        Self::start_opts(true, server_args).await
    }

    /// A cluster (auth off) whose server also takes `server_args` (e.g. `--tls-cert …`).
    pub async fn start_with(server_args: &[&str]) -> Self {
        Self::start_opts(false, server_args).await
    }

    async fn start_opts(secure: bool, server_args: &[&str]) -> Self {
        let (db, db_url) = braid_migrations::testing::fresh_postgres().await;
        let base = std::env::var("REDIS_URL").expect("REDIS_URL must be set; run the tests via scripts/test");
        let n = REDIS_DB.fetch_add(1, Ordering::SeqCst) % 15 + 1;
        let redis_url = format!("{}/{n}", base.trim_end_matches('/'));
        let migrated = braid(&["migrate", "--database-url", &db_url]);
        assert!(migrated.status.success(), "{}", stderr(&migrated));
        let server = start_server(&db_url, &redis_url, secure, server_args);
        Self { db: Some(db), db_url, redis_url, server, dir: tempfile::tempdir().unwrap(), secure }
    }

    /// The URL of this cluster's PostgreSQL database.
    pub fn database_url(&self) -> &str {
        &self.db_url
    }

    /// Another control plane on the same PostgreSQL database and Redis.
    pub fn peer(&self) -> Braid {
        start_server(&self.db_url, &self.redis_url, self.secure, &[])
    }

    /// `braid admin ARGS… --database-url URL` on this cluster's database; returns stdout.
    pub fn admin(&self, args: &[&str]) -> String {
        let mut all = vec!["admin"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--database-url", &self.db_url]);
        let out = braid(&all);
        assert!(out.status.success(), "braid {all:?}: {}", stderr(&out));
        crate::stdout(&out)
    }

    /// A new token of `tenant` with `role` (the tenant is created if needed).
    pub fn token(&self, tenant: &str, role: &str) -> String {
        let listed = self.admin(&["tenant", "list"]);
        if !listed.lines().any(|l| l.split_whitespace().next() == Some(tenant)) {
            self.admin(&["tenant", "create", tenant]);
        }
        self.admin(&["token", "create", "--tenant", tenant, "--role", role]).trim().to_owned()
    }

    /// TriggerRun with every field of `req` through `server` (this cluster's or a peer).
    pub async fn trigger_on(&self, server: &Braid, req: pb::TriggerRunRequest) -> pb::Run {
        let mut runs = pb::run_service_client::RunServiceClient::new(server.channel().await);
        runs.trigger_run(req).await.unwrap().into_inner().run.unwrap()
    }

    pub fn ledger(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(format!("{name}.jsonl"))
    }

    pub fn worker(&self, name: &str, slots: u32, types: &str, extra: &[&str]) -> ExampleWorker {
        ExampleWorker::start(&self.server.endpoint(), name, slots, types, &self.ledger(name), extra)
    }

    pub fn apply(&self, yaml: &str) {
        let path = self.dir.path().join("wf.yaml");
        std::fs::write(&path, yaml).unwrap();
        let out = braid(&["workflow", "apply", "-f", path.to_str().unwrap(), "--endpoint", &self.server.endpoint()]);
        assert!(out.status.success(), "{}", stderr(&out));
    }

    pub async fn trigger(&self, workflow: &str, input: Value) -> String {
        let mut runs = pb::run_service_client::RunServiceClient::new(self.server.channel().await);
        let req = pb::TriggerRunRequest {
            workflow_name: workflow.into(),
            input_json: input.to_string(),
            ..Default::default()
        };
        runs.trigger_run(req).await.unwrap().into_inner().run.unwrap().id
    }

    pub async fn get(&self, id: &str) -> pb::Run {
        let mut runs = pb::run_service_client::RunServiceClient::new(self.server.channel().await);
        runs.get_run(pb::GetRunRequest { run_id: id.into() }).await.unwrap().into_inner().run.unwrap()
    }

    /// Follows the run's events (WatchRun ends when the run is terminal) and returns the run.
    pub async fn finish(&self, id: &str) -> pb::Run {
        let mut runs = pb::run_service_client::RunServiceClient::new(self.server.channel().await);
        let watch = async {
            let mut stream = runs
                .watch_run(pb::WatchRunRequest { run_id: id.into(), after_sequence: 0 })
                .await
                .unwrap()
                .into_inner();
            while stream.message().await.unwrap().is_some() {}
        };
        tokio::time::timeout(RUN_DEADLINE, watch)
            .await
            .unwrap_or_else(|_| panic!("run {id} did not finish in {RUN_DEADLINE:?}"));
        self.get(id).await
    }

    pub async fn stop(mut self) {
        let status = self.server.terminate(Duration::from_secs(20));
        assert!(status.success(), "server exit: {status}");
        if let Some(db) = self.db.take() {
            braid_migrations::testing::drop_postgres(db, &self.db_url).await;
        }
    }
}

fn start_server(db_url: &str, redis_url: &str, secure: bool, extra: &[&str]) -> Braid {
    let mut args = vec![
        "server",
        "--database-url",
        db_url,
        "--redis-url",
        redis_url,
        "--grpc-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
        "--lease-ttl",
        LEASE_TTL,
        "--reconcile-grace",
        "1s",
        "--reaper-interval",
        "200ms",
    ];
    if !secure {
        args.push("--insecure");
    }
    args.extend_from_slice(extra);
    Braid::start(&args, &[])
}
