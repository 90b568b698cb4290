//! Tables `runs` and `run_events` (the per-run append-only event log).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_pk_auto, integer, integer_null, pk_uuid, string, string_null, text, text_null,
    timestamp_with_time_zone, timestamp_with_time_zone_null, uuid,
};

use super::{create_indexes, drop_table, index, tenant_id, unique};

#[derive(DeriveIden)]
pub(super) enum Runs {
    Table,
    Id,
    TenantId,
    WorkflowName,
    WorkflowVersion,
    State,
    Input,
    Output,
    IdempotencyKey,
    InputHash,
    TriggerSource,
    Reason,
    NextEventSeq,
    CreatedAt,
    StartedAt,
    FinishedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RunEvents {
    Table,
    Id,
    TenantId,
    RunId,
    Sequence,
    Kind,
    TaskName,
    Attempt,
    Detail,
    CreatedAt,
}

pub(super) async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Runs::Table)
                .col(pk_uuid(Runs::Id))
                .col(tenant_id(Runs::TenantId))
                .col(string(Runs::WorkflowName))
                .col(integer(Runs::WorkflowVersion))
                .col(string(Runs::State))
                .col(text(Runs::Input))
                .col(text_null(Runs::Output))
                .col(string_null(Runs::IdempotencyKey))
                .col(string_null(Runs::InputHash))
                .col(string(Runs::TriggerSource))
                .col(text_null(Runs::Reason))
                .col(big_integer(Runs::NextEventSeq).default(0))
                .col(timestamp_with_time_zone(Runs::CreatedAt))
                .col(timestamp_with_time_zone_null(Runs::StartedAt))
                .col(timestamp_with_time_zone_null(Runs::FinishedAt))
                .col(timestamp_with_time_zone(Runs::UpdatedAt))
                .to_owned(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table(RunEvents::Table)
                .col(big_pk_auto(RunEvents::Id))
                .col(tenant_id(RunEvents::TenantId))
                .col(uuid(RunEvents::RunId))
                .col(big_integer(RunEvents::Sequence))
                .col(string(RunEvents::Kind))
                .col(string_null(RunEvents::TaskName))
                .col(integer_null(RunEvents::Attempt))
                .col(text(RunEvents::Detail).default("{}"))
                .col(timestamp_with_time_zone(RunEvents::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_run_events_run")
                        .from(RunEvents::Table, RunEvents::RunId)
                        .to(Runs::Table, Runs::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

    use RunEvents as E;
    create_indexes(
        manager,
        [
            unique(
                "uq_runs_tenant_workflow_idempotency",
                Runs::Table,
                [Runs::TenantId, Runs::WorkflowName, Runs::IdempotencyKey],
            ),
            index("idx_runs_tenant_created_id", Runs::Table, [Runs::TenantId, Runs::CreatedAt, Runs::Id]),
            index(
                "idx_runs_tenant_workflow_created",
                Runs::Table,
                [Runs::TenantId, Runs::WorkflowName, Runs::CreatedAt],
            ),
            index("idx_runs_tenant_state", Runs::Table, [Runs::TenantId, Runs::State]),
            unique("uq_run_events_run_sequence", E::Table, [E::RunId, E::Sequence]),
            index("idx_run_events_tenant_id", E::Table, [E::TenantId, E::Id]),
        ],
    )
    .await
}

pub(super) async fn down(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    drop_table(manager, RunEvents::Table).await?;
    drop_table(manager, Runs::Table).await
}
