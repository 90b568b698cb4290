//! sea-orm entities, one module per table of `braid-migrations` (column types match the migration on PostgreSQL and SQLite).
//!
//! Mapping: `uuid` columns are [`uuid::Uuid`] (a 16-byte BLOB on SQLite), timestamps
//! are [`chrono::DateTime<chrono::Utc>`] (`timestamptz`; RFC 3339 TEXT on SQLite),
//! JSON payloads are `String` holding the exact bytes (TEXT), nullable columns are `Option`.

pub mod api_token;
pub mod dead_letter;
pub mod run;
pub mod run_event;
pub mod run_gate;
pub mod schedule;
pub mod task;
pub mod task_attempt;
pub mod tenant;
pub mod worker;
pub mod workflow;
pub mod workflow_version;
