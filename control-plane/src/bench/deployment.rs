//! The deployment under test: `braid server` on a throwaway database, `braid dev`, or an endpoint; its RSS.

use super::BenchError;
use super::config::Target;
use crate::drill::database::DrillDatabase;
use crate::drill::process::ControlPlane;
use crate::drill::progress::Progress;
use sea_orm::{ConnectionTrait, Statement};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the server may take to stop.
const STOP_DEADLINE: Duration = Duration::from_secs(15);

/// What the report says about the deployment.
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    pub kind: &'static str,
    pub endpoint: String,
    /// `PostgreSQL 15.x` or `SQLite`; empty for an endpoint.
    pub database: String,
    /// The throwaway database (postgres) or data dir (embedded).
    pub store: String,
    pub server_bin: Option<String>,
    pub server_version: Option<String>,
    pub server_pid: Option<u32>,
    /// Where the server's log is (kept with --keep).
    pub log: Option<String>,
    pub kept: bool,
}

/// Resident memory of the server process, from /proc/PID/status.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rss {
    /// VmRSS.
    pub now_bytes: u64,
    /// VmHWM: the peak since start or since the last reset.
    pub peak_bytes: u64,
}

/// A deployment the bench runs against (and owns, unless it is an endpoint).
#[derive(Debug)]
pub struct Deployment {
    pub facts: Facts,
    pub db: Option<DrillDatabase>,
    server: Option<ControlPlane>,
    dir: Option<PathBuf>,
    keep: bool,
    /// Keep the work dir (the server's log) even without --keep: the server misbehaved.
    keep_dir: bool,
}

fn io(path: &Path, e: std::io::Error) -> BenchError {
    BenchError::Config(format!("{}: {e}", path.display()))
}

async fn version_of(bin: &Path) -> Option<String> {
    let out = tokio::process::Command::new(bin).arg("--version").output().await.ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned()).filter(|v| !v.is_empty())
}

impl Deployment {
    /// Starts what `target` asks for and returns once its server announced its addresses.
    pub async fn start(
        target: &Target,
        server_bin: &Path,
        work_dir: Option<PathBuf>,
        keep: bool,
        progress: &Progress,
    ) -> Result<Self, BenchError> {
        let (database_url, redis_url) = match target {
            Target::Endpoint(endpoint) => {
                let facts = Facts {
                    kind: target.kind(),
                    endpoint: endpoint.clone(),
                    database: String::new(),
                    store: String::new(),
                    server_bin: None,
                    server_version: None,
                    server_pid: None,
                    log: None,
                    kept: false,
                };
                return Ok(Self { facts, db: None, server: None, dir: None, keep, keep_dir: false });
            }
            Target::Postgres { database_url, redis_url } => (Some(database_url), Some(redis_url)),
            Target::Embedded => (None, None),
        };
        let dir = work_dir.unwrap_or_else(|| {
            std::env::temp_dir().join(format!("braid-bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]))
        });
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let log = dir.join("server.log");
        let mut me = Self {
            facts: Facts {
                kind: target.kind(),
                endpoint: String::new(),
                database: String::new(),
                store: String::new(),
                server_bin: Some(server_bin.display().to_string()),
                server_version: version_of(server_bin).await,
                server_pid: None,
                log: Some(log.display().to_string()),
                kept: keep,
            },
            db: None,
            server: None,
            dir: Some(dir.clone()),
            keep,
            keep_dir: false,
        };
        let local = "127.0.0.1:0".to_owned();
        let server = if let (Some(database_url), Some(redis_url)) = (database_url, redis_url) {
            let db = DrillDatabase::create_named(database_url, "braid_bench").await?;
            me.facts.store.clone_from(&db.name);
            me.facts.database = postgres_version(&db).await.unwrap_or_else(|| "PostgreSQL".into());
            progress.event("setup", format!("database {} created and migrated", db.name));
            let args =
                ["--database-url", &db.url, "--redis-url", redis_url, "--grpc-listen", &local, "--http-listen", &local]
                    .map(String::from);
            me.db = Some(db);
            ControlPlane::start_command(server_bin, "server", "server", &args, &[], &log).await
        } else {
            let data = dir.join("data");
            me.facts.store = data.display().to_string();
            me.facts.database = "SQLite".into();
            let data = data.display().to_string();
            let args = ["--data-dir", &data, "--grpc-port", "0", "--http-port", "0", "--no-demo"].map(String::from);
            ControlPlane::start_command(server_bin, "dev", "dev", &args, &[], &log).await
        };
        let server = match server {
            Ok(s) => s,
            Err(e) => {
                me.keep_dir = true;
                me.teardown().await;
                return Err(e.into());
            }
        };
        me.facts.endpoint = server.endpoint();
        me.facts.server_pid = Some(server.pid());
        progress.event("setup", format!("{} up on {} (pid {})", target.kind(), server.grpc, server.pid()));
        me.server = Some(server);
        Ok(me)
    }

    pub fn endpoint(&self) -> &str {
        &self.facts.endpoint
    }

    /// The server's resident memory, if the bench started it.
    pub fn rss(&self) -> Option<Rss> {
        let pid = self.server.as_ref()?.pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| {
            let line = status.lines().find(|l| l.starts_with(name))?;
            let kib: u64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kib * 1024)
        };
        Some(Rss { now_bytes: field("VmRSS:")?, peak_bytes: field("VmHWM:")? })
    }

    /// Resets the server's peak RSS (VmHWM) to its current RSS; false if that is not possible.
    pub fn reset_peak_rss(&self) -> bool {
        let Some(server) = &self.server else { return false };
        std::fs::write(format!("/proc/{}/clear_refs", server.pid()), "5").is_ok()
    }

    /// Stops the server and drops the database and the work dir, unless kept. Returns notes.
    pub async fn teardown(mut self) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(mut server) = self.server.take() {
            let ending = server.stop(STOP_DEADLINE).await;
            if !matches!(ending, crate::drill::process::Ending::Exited(0)) {
                notes.push(format!("the server ended with {ending:?} (log: {})", server.log.display()));
                self.keep_dir = true;
            }
        }
        if let Some(db) = self.db.take() {
            if self.keep {
                notes.push(format!("database {} kept", db.keep().await));
            } else if let Err(e) = db.drop_database().await {
                notes.push(format!("could not drop the bench database: {e}"));
            }
        }
        if let Some(dir) = self.dir.take() {
            if self.keep || self.keep_dir {
                notes.push(format!("server log and data kept in {}", dir.display()));
            } else {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
        notes
    }
}

async fn postgres_version(db: &DrillDatabase) -> Option<String> {
    let stmt = Statement::from_string(sea_orm::DbBackend::Postgres, "SHOW server_version");
    let row = db.conn.query_one_raw(stmt).await.ok()??;
    let v: String = row.try_get("", "server_version").ok()?;
    Some(format!("PostgreSQL {v}"))
}
