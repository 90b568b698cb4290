//! The migration round trip on SQLite in memory (the embedded-mode backend).

mod common;

#[tokio::test]
async fn migrations_round_trip_on_sqlite() {
    let db = braid_migrations::testing::fresh_sqlite().await;
    common::round_trip(&db).await;
}
