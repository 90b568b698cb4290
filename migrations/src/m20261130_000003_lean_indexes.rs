//! A leaner hot path in PostgreSQL: partial task indexes, room for in-page updates, no foreign keys on the two logs.
//!
//! A task row is updated at every transition, and an update that changes an indexed column
//! (`state` is in every old index) writes an entry in every index. Partial indexes take entries
//! only from rows in their state, so a task's lifecycle writes about half as many index entries.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Tasks {
    Table,
    TenantId,
    TaskType,
    State,
    AvailableAt,
    LeaseExpiresAt,
    WorkerId,
    RunId,
}

fn partial(name: &str, state: &str, cols: &[Tasks]) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(name).table(Tasks::Table);
    for c in cols {
        stmt.col(*c);
    }
    stmt.and_where(Expr::col(Tasks::State).eq(state));
    stmt.to_owned()
}

fn plain(name: &str, cols: &[Tasks]) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(name).table(Tasks::Table);
    for c in cols {
        stmt.col(*c);
    }
    stmt.to_owned()
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    TenantId,
    State,
}

const OLD: [&str; 4] =
    ["idx_tasks_run", "idx_tasks_lease_queue", "idx_tasks_state_lease_expiry", "idx_tasks_state_available"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in OLD {
            manager.drop_index(Index::drop().name(name).table(Tasks::Table).to_owned()).await?;
        }
        // A run's state changes when it ends: with no index on it, that update (and the event
        // counter's) can stay on the page. Listing by state filters the tenant's newest runs.
        manager.drop_index(Index::drop().name("idx_runs_tenant_state").table(Runs::Table).to_owned()).await?;
        // The reconciler: ready tasks that are due, oldest first.
        manager.create_index(partial("idx_tasks_ready_available", "ready", &[Tasks::AvailableAt])).await?;
        // Queue depth and lag per task type.
        manager
            .create_index(partial(
                "idx_tasks_ready_queue",
                "ready",
                &[Tasks::TenantId, Tasks::TaskType, Tasks::AvailableAt],
            ))
            .await?;
        // The reaper: leases past their expiry, oldest first.
        manager.create_index(partial("idx_tasks_leased_expiry", "leased", &[Tasks::LeaseExpiresAt])).await?;
        // Heartbeats: the leases one worker stream holds.
        manager.create_index(partial("idx_tasks_leased_worker", "leased", &[Tasks::WorkerId])).await?;
        // Room on each page for the next version of a row, so that updates touching no indexed
        // column (a run's event counter, an attempt's end) stay on the page without index entries.
        if manager.get_database_backend() == sea_orm_migration::sea_orm::DatabaseBackend::Postgres {
            let db = manager.get_connection();
            db.execute_unprepared("ALTER TABLE runs SET (fillfactor = 80)").await?;
            db.execute_unprepared("ALTER TABLE task_attempts SET (fillfactor = 80)").await?;
            // The two append-mostly logs of the hot path lose their foreign keys: each inserted
            // row cost a lookup and a share lock of its parent, and the engine writes them only
            // under its run's lock. Deleting a run deletes them explicitly (retention).
            db.execute_unprepared("ALTER TABLE run_events DROP CONSTRAINT fk_run_events_run").await?;
            db.execute_unprepared("ALTER TABLE task_attempts DROP CONSTRAINT fk_task_attempts_task").await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm_migration::sea_orm::DatabaseBackend::Postgres {
            let db = manager.get_connection();
            db.execute_unprepared("ALTER TABLE runs RESET (fillfactor)").await?;
            db.execute_unprepared("ALTER TABLE task_attempts RESET (fillfactor)").await?;
            db.execute_unprepared(
                "ALTER TABLE run_events ADD CONSTRAINT fk_run_events_run FOREIGN KEY (run_id) \
                 REFERENCES runs (id) ON DELETE CASCADE",
            )
            .await?;
            db.execute_unprepared(
                "ALTER TABLE task_attempts ADD CONSTRAINT fk_task_attempts_task FOREIGN KEY (task_id) \
                 REFERENCES tasks (id) ON DELETE CASCADE",
            )
            .await?;
        }
        for name in
            ["idx_tasks_ready_available", "idx_tasks_ready_queue", "idx_tasks_leased_expiry", "idx_tasks_leased_worker"]
        {
            manager.drop_index(Index::drop().name(name).table(Tasks::Table).to_owned()).await?;
        }
        manager.create_index(plain("idx_tasks_run", &[Tasks::RunId])).await?;
        manager
            .create_index(plain(
                "idx_tasks_lease_queue",
                &[Tasks::TenantId, Tasks::TaskType, Tasks::State, Tasks::AvailableAt],
            ))
            .await?;
        manager.create_index(plain("idx_tasks_state_lease_expiry", &[Tasks::State, Tasks::LeaseExpiresAt])).await?;
        manager.create_index(plain("idx_tasks_state_available", &[Tasks::State, Tasks::AvailableAt])).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_runs_tenant_state")
                    .table(Runs::Table)
                    .col(Runs::TenantId)
                    .col(Runs::State)
                    .to_owned(),
            )
            .await
    }
}
