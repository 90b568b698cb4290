//! Braid's database schema: the sea-orm [`Migrator`] and the schema-version check.
//!
//! Every migration is one module named `mYYYYMMDD_HHMMSS_name` (sea-orm takes the
//! migration's name from its file name) and uses only the sea-query schema builder,
//! so the same migration runs on PostgreSQL and SQLite.

pub use sea_orm_migration::MigratorTrait;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseConnection;

mod m20261130_000001_initial;
mod m20261130_000002_dispatch;
mod m20261130_000003_lean_indexes;
mod m20261130_000004_flow_control;
mod m20261130_000005_trace_context;
mod m20261130_000006_event_insert_time;
mod m20261130_000007_api_tokens;
mod m20261130_000008_tenant_quotas;

#[cfg(feature = "testing")]
pub mod testing;

/// Name of the newest migration: the schema version this build expects.
pub const LATEST_MIGRATION: &str = "m20261130_000008_tenant_quotas";

/// Applies and reverts Braid's schema (`Migrator::up(&db, None)`, `Migrator::down(&db, None)`).
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261130_000001_initial::Migration),
            Box::new(m20261130_000002_dispatch::Migration),
            Box::new(m20261130_000003_lean_indexes::Migration),
            Box::new(m20261130_000004_flow_control::Migration),
            Box::new(m20261130_000005_trace_context::Migration),
            Box::new(m20261130_000006_event_insert_time::Migration),
            Box::new(m20261130_000007_api_tokens::Migration),
            Box::new(m20261130_000008_tenant_quotas::Migration),
        ]
    }
}

/// Names of the migrations this build knows that the database has not applied yet,
/// oldest first. Empty means the schema is current.
///
/// Read-only: it never creates the `seaql_migrations` table (a database without it
/// reports every migration as pending). It fails if the database has applied a
/// migration this build does not know (the schema is newer than the binary).
pub async fn pending(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    Ok(Migrator::get_pending_migrations_read_only(db).await?.iter().map(|m| m.name().to_owned()).collect())
}
