//! The migration round trip on PostgreSQL, in a fresh database on the `DATABASE_URL` server.
//! Fails (never skips) when `DATABASE_URL` is unset: run it via `scripts/test`.

mod common;

use braid_migrations::testing::{drop_postgres, fresh_postgres};

#[tokio::test]
async fn migrations_round_trip_on_postgres() {
    let (db, url) = fresh_postgres().await;
    common::round_trip(&db).await;
    drop_postgres(db, &url).await;
}
