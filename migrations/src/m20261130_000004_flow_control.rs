//! Scheduling and flow control: run priorities, concurrency keys and gates, cron ticks on runs, catch-up on schedules.
//!
//! Every new column has a default, so the hot path's inserts that do not name them keep working,
//! and none of them is indexed except the schedule tick (set once, at insert): a run's state
//! change still touches no indexed column. Runs under a concurrency limit are tracked in the
//! small `run_gates` table instead of an index on `runs`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, boolean, pk_uuid, small_integer, string, string_null, timestamp_with_time_zone,
    timestamp_with_time_zone_null, uuid_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Runs {
    Table,
    Priority,
    ConcurrencyKey,
    ScheduleId,
    ScheduledFor,
    Gated,
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Priority,
}

#[derive(DeriveIden)]
enum Schedules {
    Table,
    CatchupWindowMs,
    CatchupPolicy,
    LastTick,
    Priority,
}

#[derive(DeriveIden)]
enum DeadLetters {
    Table,
    TaskId,
}

#[derive(DeriveIden)]
enum RunGates {
    Table,
    RunId,
    TenantId,
    WorkflowName,
    ConcurrencyKey,
    ScheduleId,
    State,
    CreatedAt,
}

/// Priorities as stored: 0 high, 1 normal, 2 low (ascending is most urgent first).
const NORMAL: i16 = 1;

async fn add(manager: &SchemaManager<'_>, table: impl IntoIden + 'static, col: ColumnDef) -> Result<(), DbErr> {
    manager.alter_table(Table::alter().table(table).add_column(col).to_owned()).await
}

async fn drop_col(
    manager: &SchemaManager<'_>,
    table: impl IntoIden + 'static,
    col: impl IntoIden,
) -> Result<(), DbErr> {
    manager.alter_table(Table::alter().table(table).drop_column(col).to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add(manager, Runs::Table, small_integer(Runs::Priority).default(NORMAL).to_owned()).await?;
        add(manager, Runs::Table, string_null(Runs::ConcurrencyKey)).await?;
        add(manager, Runs::Table, uuid_null(Runs::ScheduleId)).await?;
        add(manager, Runs::Table, timestamp_with_time_zone_null(Runs::ScheduledFor)).await?;
        add(manager, Runs::Table, boolean(Runs::Gated).default(false).to_owned()).await?;
        add(manager, Tasks::Table, small_integer(Tasks::Priority).default(NORMAL).to_owned()).await?;
        add(manager, Schedules::Table, big_integer(Schedules::CatchupWindowMs).default(600_000).to_owned()).await?;
        add(manager, Schedules::Table, string(Schedules::CatchupPolicy).default("all").to_owned()).await?;
        add(manager, Schedules::Table, timestamp_with_time_zone_null(Schedules::LastTick)).await?;
        add(manager, Schedules::Table, small_integer(Schedules::Priority).default(NORMAL).to_owned()).await?;
        // Exactly once per tick, whatever number of control planes fire it.
        manager
            .create_index(
                Index::create()
                    .name("uq_runs_schedule_tick")
                    .table(Runs::Table)
                    .col(Runs::ScheduleId)
                    .col(Runs::ScheduledFor)
                    .unique()
                    .and_where(Expr::col(Runs::ScheduleId).is_not_null())
                    .to_owned(),
            )
            .await?;
        // Deleting a task (retention) checks its dead letters through the foreign key.
        manager
            .create_index(
                Index::create()
                    .name("idx_dead_letters_task")
                    .table(DeadLetters::Table)
                    .col(DeadLetters::TaskId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RunGates::Table)
                    .col(pk_uuid(RunGates::RunId))
                    .col(string(RunGates::TenantId).default("default"))
                    .col(string(RunGates::WorkflowName))
                    .col(string_null(RunGates::ConcurrencyKey))
                    .col(uuid_null(RunGates::ScheduleId))
                    .col(string(RunGates::State))
                    .col(timestamp_with_time_zone(RunGates::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_run_gates_workflow")
                    .table(RunGates::Table)
                    .col(RunGates::TenantId)
                    .col(RunGates::WorkflowName)
                    .col(RunGates::State)
                    .col(RunGates::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(RunGates::Table).to_owned()).await?;
        manager.drop_index(Index::drop().name("idx_dead_letters_task").table(DeadLetters::Table).to_owned()).await?;
        manager.drop_index(Index::drop().name("uq_runs_schedule_tick").table(Runs::Table).to_owned()).await?;
        for c in [Schedules::CatchupWindowMs, Schedules::CatchupPolicy, Schedules::LastTick, Schedules::Priority] {
            drop_col(manager, Schedules::Table, c).await?;
        }
        drop_col(manager, Tasks::Table, Tasks::Priority).await?;
        for c in [Runs::Priority, Runs::ConcurrencyKey, Runs::ScheduleId, Runs::ScheduledFor, Runs::Gated] {
            drop_col(manager, Runs::Table, c).await?;
        }
        Ok(())
    }
}
