//! The time seam inside SQL: "now" as the database clock on PostgreSQL, the engine's clock on SQLite.
//!
//! Lease expiry and backoff instants are compared and computed in statements, so that
//! control planes whose clocks drift still agree (they all read PostgreSQL's clock).
//! SQLite (embedded mode, one process) has no shared clock to defer to and stores
//! timestamps as text, so there the engine's clock value is bound instead.

use super::Backend;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, SimpleExpr};
use std::time::Duration;

/// "Now" for one statement.
#[derive(Debug, Clone, Copy)]
pub struct DbNow {
    backend: Backend,
    /// The engine's clock, used where the database has no clock of its own to offer.
    app_now: DateTime<Utc>,
}

impl DbNow {
    pub fn new(backend: Backend, app_now: DateTime<Utc>) -> Self {
        Self { backend, app_now }
    }

    /// The database these statements are for.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The current instant.
    pub fn now(&self) -> SimpleExpr {
        self.plus(Duration::ZERO)
    }

    /// The current instant plus `d`.
    pub fn plus(&self, d: Duration) -> SimpleExpr {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        match self.backend {
            Backend::Postgres if micros == 0 => Expr::cust("now()"),
            Backend::Postgres => Expr::cust_with_values("now() + $1 * interval '1 microsecond'", [micros]),
            Backend::Sqlite => Expr::value(self.app_now + chrono::Duration::microseconds(micros)),
        }
    }

    /// The current instant minus `d`.
    pub fn minus(&self, d: Duration) -> SimpleExpr {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        match self.backend {
            Backend::Postgres => Expr::cust_with_values("now() - $1 * interval '1 microsecond'", [micros]),
            Backend::Sqlite => Expr::value(self.app_now - chrono::Duration::microseconds(micros)),
        }
    }
}

/// Reads "now" once: PostgreSQL's `now()` (the transaction's start when inside one), or
/// `app_now` on SQLite. Rows stamped with it compare correctly with `DbNow` in statements.
pub async fn read<C: sea_orm::ConnectionTrait>(
    c: &C,
    backend: Backend,
    app_now: DateTime<Utc>,
) -> Result<DateTime<Utc>, super::StoreError> {
    match backend {
        Backend::Sqlite => Ok(app_now),
        Backend::Postgres => {
            let stmt = sea_orm::Statement::from_string(sea_orm::DbBackend::Postgres, "SELECT now() AS now");
            let row = c.query_one_raw(stmt).await?.ok_or_else(|| super::corrupt("SELECT now() returned no row"))?;
            Ok(row.try_get::<DateTime<Utc>>("", "now")?)
        }
    }
}
