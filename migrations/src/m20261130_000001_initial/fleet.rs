//! Tables `schedules` (cron triggers) and `workers` (connected worker sessions).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    boolean, integer, pk_uuid, string, text, timestamp_with_time_zone, timestamp_with_time_zone_null,
};

use super::{create_indexes, drop_table, index, tenant_id, unique};

#[derive(DeriveIden)]
enum Schedules {
    Table,
    Id,
    TenantId,
    Name,
    WorkflowName,
    Cron,
    Timezone,
    Input,
    OverlapPolicy,
    Paused,
    StartAt,
    EndAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Workers {
    Table,
    Id,
    TenantId,
    Name,
    TaskTypes,
    Slots,
    Labels,
    SdkLanguage,
    SdkVersion,
    ControlPlane,
    Draining,
    ConnectedAt,
    LastHeartbeatAt,
    DisconnectedAt,
}

pub(super) async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    use Schedules as S;
    manager
        .create_table(
            Table::create()
                .table(S::Table)
                .col(pk_uuid(S::Id))
                .col(tenant_id(S::TenantId))
                .col(string(S::Name))
                .col(string(S::WorkflowName))
                .col(string(S::Cron))
                .col(string(S::Timezone))
                .col(text(S::Input))
                .col(string(S::OverlapPolicy))
                .col(boolean(S::Paused))
                .col(timestamp_with_time_zone_null(S::StartAt))
                .col(timestamp_with_time_zone_null(S::EndAt))
                .col(timestamp_with_time_zone(S::CreatedAt))
                .col(timestamp_with_time_zone(S::UpdatedAt))
                .to_owned(),
        )
        .await?;

    use Workers as W;
    manager
        .create_table(
            Table::create()
                .table(W::Table)
                .col(pk_uuid(W::Id))
                .col(tenant_id(W::TenantId))
                .col(string(W::Name))
                .col(text(W::TaskTypes))
                .col(integer(W::Slots))
                .col(text(W::Labels))
                .col(string(W::SdkLanguage))
                .col(string(W::SdkVersion))
                .col(string(W::ControlPlane))
                .col(boolean(W::Draining))
                .col(timestamp_with_time_zone(W::ConnectedAt))
                .col(timestamp_with_time_zone(W::LastHeartbeatAt))
                .col(timestamp_with_time_zone_null(W::DisconnectedAt))
                .to_owned(),
        )
        .await?;

    create_indexes(
        manager,
        [
            unique("uq_schedules_tenant_name", S::Table, [S::TenantId, S::Name]),
            index("idx_workers_tenant_disconnected", W::Table, [W::TenantId, W::DisconnectedAt]),
        ],
    )
    .await
}

pub(super) async fn down(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    drop_table(manager, Workers::Table).await?;
    drop_table(manager, Schedules::Table).await
}
