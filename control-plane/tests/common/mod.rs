//! Shared test setup: an engine on a fresh, migrated SQLite file or PostgreSQL database.

#![allow(dead_code)]

use braid_control_plane::domain::definition::WorkflowDefinition;
use braid_control_plane::domain::records::Tenant;
use braid_control_plane::engine::{Engine, ExecSettings, SystemClock};
use braid_control_plane::queue::InProcessQueue;
use braid_control_plane::store::Store;
use std::sync::Arc;

/// An engine on a throwaway database; dropping it does not delete the database,
/// call [`TestDb::finish`].
pub struct TestDb {
    pub engine: Engine,
    pub store: Store,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("braid.db").display());
        Self::open(&url, Cleanup::Sqlite(dir)).await
    }

    /// A fresh database on the `DATABASE_URL` server (the test fails if it is unset).
    pub async fn postgres() -> Self {
        let (db, url) = braid_migrations::testing::fresh_postgres().await;
        db.close().await.expect("close bootstrap pool");
        Self::open(&url, Cleanup::Postgres(url.clone())).await
    }

    async fn open(url: &str, cleanup: Cleanup) -> Self {
        Self::open_with(url, cleanup, ExecSettings::default()).await
    }

    /// The same on SQLite with these engine settings (e.g. a short lease TTL).
    pub async fn sqlite_with(settings: ExecSettings) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("braid.db").display());
        Self::open_with(&url, Cleanup::Sqlite(dir), settings).await
    }

    /// The same on PostgreSQL with these engine settings.
    pub async fn postgres_with(settings: ExecSettings) -> Self {
        let (db, url) = braid_migrations::testing::fresh_postgres().await;
        db.close().await.expect("close bootstrap pool");
        Self::open_with(&url, Cleanup::Postgres(url.clone()), settings).await
    }

    async fn open_with(url: &str, cleanup: Cleanup, settings: ExecSettings) -> Self {
        let store = Store::connect(url, 8).await.expect("connect");
        store.migrate().await.expect("migrate");
        let engine = Engine::new(store.clone(), Arc::new(SystemClock), Arc::new(InProcessQueue::new()), settings);
        Self { engine, store, cleanup }
    }

    /// A second engine (another control plane) on the same PostgreSQL database.
    pub async fn second_engine(&self) -> Engine {
        let Cleanup::Postgres(url) = &self.cleanup else { panic!("a second control plane needs PostgreSQL") };
        let store = Store::connect(url, 8).await.expect("connect");
        Engine::new(store, Arc::new(SystemClock), Arc::new(InProcessQueue::new()), *self.engine.settings())
    }

    pub async fn finish(self) {
        self.store.close().await.expect("close store");
        match self.cleanup {
            Cleanup::Sqlite(dir) => drop(dir),
            Cleanup::Postgres(url) => {
                let db = sea_orm::Database::connect(url.as_str()).await.expect("reconnect for drop");
                braid_migrations::testing::drop_postgres(db, &url).await;
            }
        }
    }
}

pub fn tenant() -> Tenant {
    Tenant::default_tenant()
}

pub fn yaml(text: &str) -> WorkflowDefinition {
    WorkflowDefinition::from_yaml_str(text).expect("test YAML parses")
}

/// a -> (b, c) -> d
pub fn diamond(name: &str) -> WorkflowDefinition {
    yaml(&format!(
        "name: {name}\ntasks:\n  - {{name: a, task_type: t}}\n  - {{name: b, task_type: t, depends_on: [a]}}\n  - {{name: c, task_type: t, depends_on: [a]}}\n  - {{name: d, task_type: t, depends_on: [b, c]}}\n"
    ))
}

/// Runs `body` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = common::TestDb::sqlite().await;
                ($body)(&db).await;
                db.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = common::TestDb::postgres().await;
                ($body)(&db).await;
                db.finish().await;
            }
        }
    };
}
