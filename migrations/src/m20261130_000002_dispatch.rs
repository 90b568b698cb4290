//! Dispatch bookkeeping: when a ready task was last published (reconciler), dead letters' error type (filters).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{string, timestamp_with_time_zone_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tasks {
    Table,
    PublishedAt,
    State,
    AvailableAt,
}

#[derive(DeriveIden)]
enum DeadLetters {
    Table,
    ErrorType,
    TenantId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Tasks::Table)
                    .add_column(timestamp_with_time_zone_null(Tasks::PublishedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(DeadLetters::Table)
                    .add_column(string(DeadLetters::ErrorType).default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_dead_letters_error_type")
                    .table(DeadLetters::Table)
                    .col(DeadLetters::TenantId)
                    .col(DeadLetters::ErrorType)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_tasks_state_available")
                    .table(Tasks::Table)
                    .col(Tasks::State)
                    .col(Tasks::AvailableAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("idx_tasks_state_available").table(Tasks::Table).to_owned()).await?;
        manager
            .drop_index(Index::drop().name("idx_dead_letters_error_type").table(DeadLetters::Table).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(DeadLetters::Table).drop_column(DeadLetters::ErrorType).to_owned())
            .await?;
        manager.alter_table(Table::alter().table(Tasks::Table).drop_column(Tasks::PublishedAt).to_owned()).await
    }
}
