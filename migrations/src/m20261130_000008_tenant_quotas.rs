//! Tenant quotas: per-tenant overrides of the control planes' default quotas (NULL keeps the default), and a partial index that counts a tenant's open runs.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::integer_null;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    QuotaTriggersPerSecond,
    QuotaTriggerBurst,
    QuotaConcurrentRuns,
    QuotaWorkers,
    QuotaSchedules,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    TenantId,
    FinishedAt,
}

const COLUMNS: [Tenants; 5] = [
    Tenants::QuotaTriggersPerSecond,
    Tenants::QuotaTriggerBurst,
    Tenants::QuotaConcurrentRuns,
    Tenants::QuotaWorkers,
    Tenants::QuotaSchedules,
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for c in COLUMNS {
            manager.alter_table(Table::alter().table(Tenants::Table).add_column(integer_null(c)).to_owned()).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_runs_open")
                    .table(Runs::Table)
                    .col(Runs::TenantId)
                    .and_where(Expr::col(Runs::FinishedAt).is_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("idx_runs_open").table(Runs::Table).to_owned()).await?;
        for c in COLUMNS {
            manager.alter_table(Table::alter().table(Tenants::Table).drop_column(c).to_owned()).await?;
        }
        Ok(())
    }
}
