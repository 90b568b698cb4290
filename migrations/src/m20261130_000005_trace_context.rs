//! Traces: the W3C `traceparent` of the span that triggered a run, so that its tasks' dispatch joins the run's trace.
//!
//! Nullable, unindexed, and set once at insert: NULL when traces are off, so the hot path writes
//! nothing more and a run's state changes touch no new column.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::text_null;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Runs {
    Table,
    TraceContext,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Runs::Table).add_column(text_null(Runs::TraceContext)).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Runs::Table).drop_column(Runs::TraceContext).to_owned()).await
    }
}
