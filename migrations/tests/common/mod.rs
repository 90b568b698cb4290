//! The migration round trip both backends run: up, check the schema, down to zero, up again.

use braid_migrations::{LATEST_MIGRATION, Migrator, MigratorTrait, pending};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseConnection};

pub const TABLES: [&str; 10] = [
    "tenants",
    "workflows",
    "workflow_versions",
    "runs",
    "tasks",
    "task_attempts",
    "run_events",
    "schedules",
    "workers",
    "dead_letters",
];

pub async fn round_trip(db: &DatabaseConnection) {
    let all: Vec<String> = Migrator::migrations().iter().map(|m| m.name().to_owned()).collect();
    assert_eq!(all.last().map(String::as_str), Some(LATEST_MIGRATION));
    assert_eq!(pending(db).await.unwrap(), all, "fresh database");

    Migrator::up(db, None).await.unwrap();
    assert_schema_current(db).await;
    smoke_rows(db).await;

    Migrator::down(db, None).await.unwrap();
    assert_eq!(pending(db).await.unwrap(), all, "after down");
    let manager = SchemaManager::new(db);
    for table in TABLES {
        assert!(!manager.has_table(table).await.unwrap(), "{table} after down");
    }

    Migrator::up(db, None).await.unwrap();
    assert_schema_current(db).await;
    // Up again with nothing pending is a no-op.
    Migrator::up(db, None).await.unwrap();
    assert_schema_current(db).await;
}

async fn assert_schema_current(db: &DatabaseConnection) {
    assert!(pending(db).await.unwrap().is_empty(), "pending after up");
    let manager = SchemaManager::new(db);
    for table in TABLES {
        assert!(manager.has_table(table).await.unwrap(), "{table} after up");
    }
    let row = db
        .query_one(
            Query::select().columns(["name", "tenant_id"]).from("tenants").and_where(Expr::col("id").eq("default")),
        )
        .await
        .unwrap()
        .expect("default tenant row");
    assert_eq!(row.try_get::<String>("", "name").unwrap(), "Default");
    assert_eq!(row.try_get::<String>("", "tenant_id").unwrap(), "default");
}

/// Column defaults, the NULL-distinct idempotency key, and ON DELETE CASCADE.
async fn smoke_rows(db: &DatabaseConnection) {
    let now = chrono::Utc::now();
    let new = uuid::Uuid::now_v7;
    let insert_run = |id: uuid::Uuid, key: Option<&str>| {
        Query::insert()
            .into_table("runs")
            .columns([
                "id",
                "workflow_name",
                "workflow_version",
                "state",
                "input",
                "idempotency_key",
                "trigger_source",
                "created_at",
                "updated_at",
            ])
            .values_panic([
                id.into(),
                "wf".into(),
                1.into(),
                "running".into(),
                "{}".into(),
                key.map(str::to_owned).into(),
                "api".into(),
                now.into(),
                now.into(),
            ])
            .to_owned()
    };
    db.execute(&insert_run(new(), None)).await.unwrap();
    db.execute(&insert_run(new(), None)).await.expect("NULL keys are distinct");
    db.execute(&insert_run(new(), Some("k"))).await.unwrap();
    assert!(db.execute(&insert_run(new(), Some("k"))).await.is_err(), "duplicate key");

    let run_id = new();
    // tenant_id and next_event_seq left to their defaults.
    db.execute(&insert_run(run_id, None)).await.unwrap();
    db.execute(
        &Query::insert()
            .into_table("run_events")
            .columns(["run_id", "sequence", "kind", "created_at"])
            .values_panic([run_id.into(), 1i64.into(), "run_started".into(), now.into()])
            .to_owned(),
    )
    .await
    .unwrap();

    let run = db
        .query_one(
            Query::select().columns(["tenant_id", "next_event_seq"]).from("runs").and_where(Expr::col("id").eq(run_id)),
        )
        .await
        .unwrap()
        .expect("run row");
    assert_eq!(run.try_get::<String>("", "tenant_id").unwrap(), "default");
    assert_eq!(run.try_get::<i64>("", "next_event_seq").unwrap(), 0);
    let event =
        db.query_one(Query::select().columns(["id", "detail"]).from("run_events")).await.unwrap().expect("event row");
    assert!(event.try_get::<i64>("", "id").unwrap() >= 1);
    assert_eq!(event.try_get::<String>("", "detail").unwrap(), "{}");

    // Deleting a run deletes its events explicitly: on PostgreSQL the event log has no foreign
    // key (m20261130_000003), so nothing cascades there.
    let events = Query::delete().from_table("run_events").and_where(Expr::col("run_id").eq(run_id)).to_owned();
    db.execute(&events).await.unwrap();
    db.execute(&Query::delete().from_table("runs").and_where(Expr::col("id").eq(run_id)).to_owned()).await.unwrap();
    let left = db.query_all(Query::select().column("id").from("run_events")).await.unwrap();
    assert!(left.is_empty(), "the run's events are gone with it");
}
