//! The advisory lock that elects one control plane per background loop (PostgreSQL); SQLite always leads.

use super::{Backend, StoreError, corrupt};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

/// Takes the transaction-scoped advisory lock `key` if no other session holds it. The lock
/// lasts until the transaction ends, and ends with it when the holder's connection dies
/// (a control plane killed with SIGKILL frees it at once). SQLite (one process): always true.
pub async fn try_lock<C: ConnectionTrait>(c: &C, backend: Backend, key: i64) -> Result<bool, StoreError> {
    match backend {
        Backend::Sqlite => Ok(true),
        Backend::Postgres => {
            let stmt = Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_try_advisory_xact_lock($1) AS locked",
                [key.into()],
            );
            let row =
                c.query_one_raw(stmt).await?.ok_or_else(|| corrupt("pg_try_advisory_xact_lock returned no row"))?;
            Ok(row.try_get::<bool>("", "locked")?)
        }
    }
}
