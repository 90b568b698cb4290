//! Tables `tenants` (with the default tenant row), `workflows` and `workflow_versions`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{integer, pk_uuid, string, text, timestamp_with_time_zone};

use super::{create_indexes, drop_table, index, tenant_id, unique};

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    TenantId,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Workflows {
    Table,
    Id,
    TenantId,
    Name,
    LatestVersion,
    Description,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WorkflowVersions {
    Table,
    Id,
    TenantId,
    WorkflowName,
    Version,
    ContentHash,
    Definition,
    CreatedAt,
}

pub(super) async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Tenants::Table)
                .col(string(Tenants::Id).primary_key())
                .col(tenant_id(Tenants::TenantId))
                .col(string(Tenants::Name))
                .col(timestamp_with_time_zone(Tenants::CreatedAt))
                .to_owned(),
        )
        .await?;
    // Bound (not CURRENT_TIMESTAMP) so SQLite stores the same RFC 3339 text as every other row.
    manager
        .execute(
            Query::insert()
                .into_table(Tenants::Table)
                .columns([Tenants::Id, Tenants::TenantId, Tenants::Name, Tenants::CreatedAt])
                .values_panic(["default".into(), "default".into(), "Default".into(), chrono::Utc::now().into()])
                .to_owned(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table(Workflows::Table)
                .col(pk_uuid(Workflows::Id))
                .col(tenant_id(Workflows::TenantId))
                .col(string(Workflows::Name))
                .col(integer(Workflows::LatestVersion))
                .col(text(Workflows::Description))
                .col(timestamp_with_time_zone(Workflows::CreatedAt))
                .col(timestamp_with_time_zone(Workflows::UpdatedAt))
                .to_owned(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table(WorkflowVersions::Table)
                .col(pk_uuid(WorkflowVersions::Id))
                .col(tenant_id(WorkflowVersions::TenantId))
                .col(string(WorkflowVersions::WorkflowName))
                .col(integer(WorkflowVersions::Version))
                .col(string(WorkflowVersions::ContentHash))
                .col(text(WorkflowVersions::Definition))
                .col(timestamp_with_time_zone(WorkflowVersions::CreatedAt))
                .to_owned(),
        )
        .await?;

    use WorkflowVersions as V;
    create_indexes(
        manager,
        [
            unique("uq_workflows_tenant_name", Workflows::Table, [Workflows::TenantId, Workflows::Name]),
            unique("uq_workflow_versions_tenant_name_version", V::Table, [V::TenantId, V::WorkflowName, V::Version]),
            index("idx_workflow_versions_tenant_name_hash", V::Table, [V::TenantId, V::WorkflowName, V::ContentHash]),
        ],
    )
    .await
}

pub(super) async fn down(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    drop_table(manager, WorkflowVersions::Table).await?;
    drop_table(manager, Workflows::Table).await?;
    drop_table(manager, Tenants::Table).await
}
