//! Tables `tasks`, `task_attempts` (one row per lease) and `dead_letters`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, integer, pk_uuid, string, string_null, text, text_null, timestamp_with_time_zone,
    timestamp_with_time_zone_null, uuid, uuid_null,
};

use super::runs::Runs;
use super::{create_indexes, drop_table, index, tenant_id, unique};

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
    TenantId,
    RunId,
    Name,
    TaskType,
    State,
    DependsOn,
    PendingDeps,
    Attempt,
    MaxAttempts,
    RetryPolicy,
    TimeoutMs,
    LeaseId,
    LeaseExpiresAt,
    WorkerId,
    AvailableAt,
    Output,
    LastError,
    CreatedAt,
    UpdatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum TaskAttempts {
    Table,
    Id,
    TenantId,
    TaskId,
    RunId,
    Attempt,
    LeaseId,
    WorkerId,
    StartedAt,
    FinishedAt,
    Outcome,
    Error,
    Output,
}

#[derive(DeriveIden)]
enum DeadLetters {
    Table,
    Id,
    TenantId,
    TaskId,
    RunId,
    WorkflowName,
    WorkflowVersion,
    TaskName,
    TaskType,
    Error,
    Attempts,
    CreatedAt,
    RedrivenAt,
}

/// `ON DELETE CASCADE` foreign key `name` from `table.col` to `tasks.id`.
fn task_fk<T: IntoIden + 'static, C: IntoIden>(name: &str, table: T, col: C) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, col)
        .to(Tasks::Table, Tasks::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

pub(super) async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Tasks::Table)
                .col(pk_uuid(Tasks::Id))
                .col(tenant_id(Tasks::TenantId))
                .col(uuid(Tasks::RunId))
                .col(string(Tasks::Name))
                .col(string(Tasks::TaskType))
                .col(string(Tasks::State))
                .col(text(Tasks::DependsOn))
                .col(integer(Tasks::PendingDeps))
                .col(integer(Tasks::Attempt).default(0))
                .col(integer(Tasks::MaxAttempts))
                .col(text(Tasks::RetryPolicy))
                .col(big_integer(Tasks::TimeoutMs))
                .col(uuid_null(Tasks::LeaseId))
                .col(timestamp_with_time_zone_null(Tasks::LeaseExpiresAt))
                .col(string_null(Tasks::WorkerId))
                .col(timestamp_with_time_zone(Tasks::AvailableAt))
                .col(text_null(Tasks::Output))
                .col(text_null(Tasks::LastError))
                .col(timestamp_with_time_zone(Tasks::CreatedAt))
                .col(timestamp_with_time_zone(Tasks::UpdatedAt))
                .col(timestamp_with_time_zone_null(Tasks::FinishedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_tasks_run")
                        .from(Tasks::Table, Tasks::RunId)
                        .to(Runs::Table, Runs::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

    use TaskAttempts as A;
    manager
        .create_table(
            Table::create()
                .table(A::Table)
                .col(pk_uuid(A::Id))
                .col(tenant_id(A::TenantId))
                .col(uuid(A::TaskId))
                .col(uuid(A::RunId))
                .col(integer(A::Attempt))
                .col(uuid(A::LeaseId))
                .col(string_null(A::WorkerId))
                .col(timestamp_with_time_zone(A::StartedAt))
                .col(timestamp_with_time_zone_null(A::FinishedAt))
                .col(string_null(A::Outcome))
                .col(text_null(A::Error))
                .col(text_null(A::Output))
                .foreign_key(&mut task_fk("fk_task_attempts_task", A::Table, A::TaskId))
                .to_owned(),
        )
        .await?;

    use DeadLetters as D;
    manager
        .create_table(
            Table::create()
                .table(D::Table)
                .col(pk_uuid(D::Id))
                .col(tenant_id(D::TenantId))
                .col(uuid(D::TaskId))
                .col(uuid(D::RunId))
                .col(string(D::WorkflowName))
                .col(integer(D::WorkflowVersion))
                .col(string(D::TaskName))
                .col(string(D::TaskType))
                .col(text(D::Error))
                .col(integer(D::Attempts))
                .col(timestamp_with_time_zone(D::CreatedAt))
                .col(timestamp_with_time_zone_null(D::RedrivenAt))
                .foreign_key(&mut task_fk("fk_dead_letters_task", D::Table, D::TaskId))
                .to_owned(),
        )
        .await?;

    use Tasks as T;
    create_indexes(
        manager,
        [
            unique("uq_tasks_run_name", T::Table, [T::RunId, T::Name]),
            index("idx_tasks_lease_queue", T::Table, [T::TenantId, T::TaskType, T::State, T::AvailableAt]),
            index("idx_tasks_state_lease_expiry", T::Table, [T::State, T::LeaseExpiresAt]),
            index("idx_tasks_run", T::Table, [T::RunId]),
            unique("uq_task_attempts_task_attempt", A::Table, [A::TaskId, A::Attempt]),
            index("idx_dead_letters_tenant_created", D::Table, [D::TenantId, D::CreatedAt]),
            index("idx_dead_letters_tenant_workflow_task", D::Table, [D::TenantId, D::WorkflowName, D::TaskName]),
        ],
    )
    .await
}

pub(super) async fn down(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    drop_table(manager, DeadLetters::Table).await?;
    drop_table(manager, TaskAttempts::Table).await?;
    drop_table(manager, Tasks::Table).await
}
