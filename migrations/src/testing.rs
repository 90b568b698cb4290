//! Test helpers (cargo feature `testing`): an isolated, empty database per test.
//!
//! PostgreSQL: [`fresh_postgres`] reads `DATABASE_URL` (set by `scripts/test`; it
//! panics if unset, so a test never skips silently), creates `braid_test_<random hex>`
//! on that server and connects to it; [`drop_postgres`] closes the pool and drops
//! the database. A test that panics before `drop_postgres` leaks its database;
//! every one is named `braid_test_*`, so the throwaway server can be wiped.
//! SQLite: [`fresh_sqlite`] opens a private in-memory database.
//! The databases are empty: apply the schema with `Migrator::up(&db, None)`.
//!
//! From another crate's tests:
//!
//! ```toml
//! [dev-dependencies]
//! braid-migrations = { workspace = true, features = ["testing"] }
//! ```
//!
//! ```no_run
//! # async fn t() {
//! use braid_migrations::{Migrator, MigratorTrait, testing};
//! let (db, url) = testing::fresh_postgres().await;
//! Migrator::up(&db, None).await.unwrap();
//! // … the test, against `db` (or its own pool on `url`) …
//! testing::drop_postgres(db, &url).await;
//! # }
//! ```

use sea_orm_migration::sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

/// The environment variable naming the PostgreSQL server tests run against.
pub const DATABASE_URL_VAR: &str = "DATABASE_URL";

/// `DATABASE_URL`, or a panic telling how to run the PostgreSQL tests.
pub fn database_url() -> String {
    match std::env::var(DATABASE_URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{DATABASE_URL_VAR} is not set: the PostgreSQL tests need a server. \
             Run the tests via `scripts/test` (it starts Postgres and sets {DATABASE_URL_VAR}), \
             or `eval \"$(scripts/services start)\"` first."
        ),
    }
}

/// Creates an empty database `braid_test_<random hex>` on the `DATABASE_URL` server
/// and returns a small pool on it and its URL. Panics on any failure.
pub async fn fresh_postgres() -> (DatabaseConnection, String) {
    let admin_url = database_url();
    let name = format!("braid_test_{}", uuid::Uuid::new_v4().simple());
    admin_execute(&admin_url, &format!("CREATE DATABASE \"{name}\"")).await;
    let url = with_database(&admin_url, &name);
    let mut opts = ConnectOptions::new(url.clone());
    // Many tests run at once: keep each one's share of the server's connections small.
    opts.max_connections(4).sqlx_logging(false);
    let db = Database::connect(opts).await.unwrap_or_else(|e| panic!("connect to test database {name}: {e}"));
    (db, url)
}

/// Closes `db` and drops the database that `url` names (made by [`fresh_postgres`]).
pub async fn drop_postgres(db: DatabaseConnection, url: &str) {
    db.close().await.expect("close test database pool");
    let name = database_name(url);
    assert!(name.starts_with("braid_test_"), "refusing to drop {name:?}: not a test database");
    admin_execute(&database_url(), &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
}

/// A private, empty in-memory SQLite database (sea-orm gives it one connection).
pub async fn fresh_sqlite() -> DatabaseConnection {
    Database::connect("sqlite::memory:").await.expect("open in-memory SQLite")
}

/// Runs one statement (that sea-query cannot build, like `CREATE DATABASE`) on `admin_url`.
async fn admin_execute(admin_url: &str, sql: &str) {
    let mut opts = ConnectOptions::new(admin_url.to_owned());
    opts.max_connections(1).sqlx_logging(false);
    let admin = Database::connect(opts).await.unwrap_or_else(|e| panic!("connect to {DATABASE_URL_VAR}: {e}"));
    admin.execute_unprepared(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    admin.close().await.expect("close admin connection");
}

/// `url` with its database (path) replaced by `name`, keeping any `?query`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// The database (last path segment) that `url` names.
fn database_name(url: &str) -> &str {
    let base = url.split_once('?').map_or(url, |(base, _)| base);
    base.rsplit_once('/').map_or("", |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::{database_name, with_database};

    #[test]
    fn replaces_the_database_and_keeps_the_query() {
        let cases = [
            ("postgres://u@h:1/postgres", "postgres://u@h:1/x"),
            ("postgres://u:p@h:1/db?sslmode=disable", "postgres://u:p@h:1/x?sslmode=disable"),
            ("postgres://u@h:1", "postgres://u@h:1/x"),
            ("postgres://u@h:1/", "postgres://u@h:1/x"),
        ];
        for (url, want) in cases {
            assert_eq!(with_database(url, "x"), want, "{url}");
            assert_eq!(database_name(want), "x");
        }
    }
}
