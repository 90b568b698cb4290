//! The drill's throwaway database: `braid_drill_<hex>` created, migrated and dropped on the given PostgreSQL server.

use super::DrillError;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use std::time::Duration;

/// A fresh, migrated database on the server of `admin_url`, and a small pool on it for audits.
#[derive(Debug)]
pub struct DrillDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
    pub conn: DatabaseConnection,
}

/// `url` with its database name replaced by `name` (user, host, port and query kept).
pub fn with_database(url: &str, name: &str) -> Result<String, DrillError> {
    let bad = || DrillError::Config(format!("{url:?} is not a PostgreSQL URL (postgres://user@host:port/db)"));
    let rest_at = url.find("://").ok_or_else(bad)? + 3;
    let (scheme, rest) = url.split_at(rest_at);
    if !(scheme == "postgres://" || scheme == "postgresql://") {
        return Err(bad());
    }
    let (authority, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => match rest.find('?') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        },
    };
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    Ok(format!("{scheme}{authority}/{name}{query}"))
}

async fn connect(url: &str, max: u32) -> Result<DatabaseConnection, DrillError> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(max)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    Ok(Database::connect(opts).await?)
}

async fn admin_execute(admin_url: &str, sql: &str) -> Result<(), DrillError> {
    let admin = connect(admin_url, 1).await?;
    let done = admin.execute_unprepared(sql).await.map(|_| ()).map_err(|e| DrillError::Database(format!("{sql}: {e}")));
    let _ = admin.close().await;
    done
}

impl DrillDatabase {
    /// Creates `braid_drill_<hex>` on the server of `admin_url` and applies every migration.
    pub async fn create(admin_url: &str) -> Result<Self, DrillError> {
        Self::create_named(admin_url, "braid_drill").await
    }

    /// Creates `<prefix>_<hex>` on the server of `admin_url` and applies every migration.
    pub async fn create_named(admin_url: &str, prefix: &str) -> Result<Self, DrillError> {
        let name = format!("{prefix}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let url = with_database(admin_url, &name)?;
        admin_execute(admin_url, &format!("CREATE DATABASE \"{name}\"")).await?;
        let store = crate::store::Store::connect(&url, 2).await?;
        let migrated = store.migrate().await;
        let _ = store.close().await;
        migrated?;
        let conn = connect(&url, 4).await?;
        Ok(Self { admin_url: admin_url.to_owned(), name, url, conn })
    }

    /// Closes the audit pool and drops the database (every connection to it is ended).
    pub async fn drop_database(self) -> Result<(), DrillError> {
        let _ = self.conn.close().await;
        admin_execute(&self.admin_url, &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)).await
    }

    /// Closes the audit pool and keeps the database (`--keep`).
    pub async fn keep(self) -> String {
        let _ = self.conn.close().await;
        self.name
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_replaced() {
        let f = |u| with_database(u, "x").unwrap();
        assert_eq!(f("postgres://braid@127.0.0.1:5432/braid"), "postgres://braid@127.0.0.1:5432/x");
        assert_eq!(f("postgresql://u:p@h/db?sslmode=disable"), "postgresql://u:p@h/x?sslmode=disable");
        assert_eq!(f("postgres://h:1"), "postgres://h:1/x");
        assert_eq!(f("postgres://h:1?a=b"), "postgres://h:1/x?a=b");
        assert!(with_database("mysql://h/db", "x").is_err());
    }
}
