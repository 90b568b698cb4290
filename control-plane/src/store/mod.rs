//! Storage: the sea-orm connection, its error enum, and named query functions (the only SQL).

pub mod access;
pub mod bulk;
pub mod dbtime;
pub mod dead_letters;
pub mod entity;
pub mod events;
pub mod gates;
pub mod gauges;
pub mod insight;
pub mod leader;
pub mod leases;
pub mod progress;
pub mod retention;
pub mod runs;
pub mod schedules;
pub mod tasks;
pub mod workers;
pub mod workflows;

use braid_migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbErr, SqlErr, TransactionTrait};
use std::time::Duration;

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Db(DbErr),
    /// Two writers raced for the same unique key; the caller decides what that means.
    #[error("conflict on a unique key: {0}")]
    Conflict(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error(
        "the database schema is older than this braid expects ({} pending migration(s): {}); run `braid migrate` first",
        .0.len(), .0.join(", ")
    )]
    SchemaBehind(Vec<String>),
}

impl From<DbErr> for StoreError {
    fn from(e: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(m)) = e.sql_err() {
            return Self::Conflict(m);
        }
        match e {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Self::Unavailable(e.to_string()),
            other => Self::Db(other),
        }
    }
}

/// `url` with any password replaced by `***`, fit for logs and error messages.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((userinfo, host)) = rest.split_once('@') else { return url.to_owned() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else {
            None
        }
    }
}

/// A handle on the database: a connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    backend: Backend,
}

impl Store {
    /// Connects to `url` (`postgres://…` or `sqlite://path?mode=rwc`) with a pool of `max_connections`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let backend =
            Backend::of_url(url).ok_or_else(|| StoreError::Unavailable(format!("unsupported database url {url:?}")))?;
        // SQLite (embedded mode) gets one connection: a deferred transaction that reads and
        // then writes fails at once with SQLITE_BUSY_SNAPSHOT when another connection wrote
        // in between, and one process gains nothing from several writers anyway.
        let max_connections = match backend {
            Backend::Postgres => max_connections,
            Backend::Sqlite => 1,
        };
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.max_connections(max_connections)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(10))
            .sqlx_logging(false);
        if backend == Backend::Sqlite {
            // Keep the one connection: a pool that recycles it gains nothing here.
            opts.idle_timeout(None::<Duration>).max_lifetime(None::<Duration>);
            // One process owns the file: WAL for concurrent readers, and wait for the writer lock.
            opts.map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        }
        let db = Database::connect(opts).await.map_err(|e| match StoreError::from(e) {
            StoreError::Unavailable(m) => StoreError::Unavailable(format!("{}: {m}", redacted(url))),
            other => other,
        })?;
        Ok(Self { db, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn conn(&self) -> &DatabaseConnection {
        &self.db
    }

    pub async fn begin(&self) -> Result<DatabaseTransaction, StoreError> {
        Ok(self.db.begin().await?)
    }

    /// Applies every pending migration; returns the names applied.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let pending = braid_migrations::pending(&self.db).await?;
        Migrator::up(&self.db, None).await?;
        Ok(pending)
    }

    /// Fails with [`StoreError::SchemaBehind`] unless every migration this binary knows is applied.
    pub async fn check_schema(&self) -> Result<(), StoreError> {
        let pending = braid_migrations::pending(&self.db).await?;
        if pending.is_empty() { Ok(()) } else { Err(StoreError::SchemaBehind(pending)) }
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(self) -> Result<(), StoreError> {
        Ok(self.db.close().await?)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(super::redacted("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(super::redacted("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redacted("sqlite://x.db?mode=rwc"), "sqlite://x.db?mode=rwc");
    }
}
