//! The all-runs feed's horizon on PostgreSQL: each event row keeps the instant it was inserted (`clock_timestamp()`).
//!
//! Global event ids are taken at insert, but transactions commit out of order. An event inserted
//! before the oldest transaction still writing started has a smaller id than anything that
//! transaction will commit, so the feed hands out events up to that horizon and never passes one
//! over (see "Live feed" in docs/architecture.md). Not in the entity: only the feed's query reads
//! it, and every insert path gets it from the default. SQLite (one writer, commits in id order)
//! needs none.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(
                    "ALTER TABLE run_events ADD COLUMN inserted_at timestamptz NOT NULL DEFAULT clock_timestamp()",
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager.get_connection().execute_unprepared("ALTER TABLE run_events DROP COLUMN inserted_at").await?;
        }
        Ok(())
    }
}
