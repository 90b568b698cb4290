//! The initial schema: every table of the model, each carrying `tenant_id`, and the default tenant.
//!
//! Conventions used by the child modules: ids are `uuid` (a 16-byte BLOB on SQLite
//! through sea-orm), timestamps are `timestamp with time zone` (RFC 3339 TEXT on
//! SQLite), JSON payloads are TEXT holding the exact bytes, and every column is
//! NOT NULL unless it is built with a `*_null` helper.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::string;

mod catalog;
mod fleet;
mod runs;
mod tasks;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        catalog::up(manager).await?;
        runs::up(manager).await?;
        tasks::up(manager).await?;
        fleet::up(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        fleet::down(manager).await?;
        tasks::down(manager).await?;
        runs::down(manager).await?;
        catalog::down(manager).await
    }

    /// All or nothing on both backends (SQLite would otherwise run without a transaction).
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

/// The `tenant_id` column every table has: NOT NULL, default `'default'`.
fn tenant_id<T: IntoIden>(col: T) -> ColumnDef {
    string(col).default("default").take()
}

/// A (non-unique) index named `name` on `table (cols…)`.
fn index<T, C, I>(name: &str, table: T, cols: I) -> IndexCreateStatement
where
    T: IntoIden,
    C: IntoIndexColumn,
    I: IntoIterator<Item = C>,
{
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for col in cols {
        stmt.col(col);
    }
    stmt
}

/// A unique index named `name` on `table (cols…)`; NULLs are distinct on both backends.
fn unique<T, C, I>(name: &str, table: T, cols: I) -> IndexCreateStatement
where
    T: IntoIden,
    C: IntoIndexColumn,
    I: IntoIterator<Item = C>,
{
    let mut stmt = index(name, table, cols);
    stmt.unique();
    stmt
}

/// Creates every index in `stmts`.
async fn create_indexes(
    manager: &SchemaManager<'_>,
    stmts: impl IntoIterator<Item = IndexCreateStatement>,
) -> Result<(), DbErr> {
    for stmt in stmts {
        manager.create_index(stmt).await?;
    }
    Ok(())
}

/// Drops `table` (its indexes go with it).
async fn drop_table<T: IntoIden + 'static>(manager: &SchemaManager<'_>, table: T) -> Result<(), DbErr> {
    manager.drop_table(Table::drop().table(table).to_owned()).await
}
