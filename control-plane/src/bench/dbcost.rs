//! Database cost per task (postgres deployment): statements from `pg_stat_statements`, transactions around a phase.

use super::BenchError;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde::Serialize;

/// Queries of the probe itself, left out of the counts.
const OWN: &str = "query NOT ILIKE '%pg_stat%' AND query NOT ILIKE '%pg_snapshot%'";

/// Reads `pg_stat_statements` and the transaction counters of the bench database.
#[derive(Debug, Clone)]
pub struct Probe {
    conn: DatabaseConnection,
}

/// Counters at the start of a phase.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    xact_commit: i64,
    next_xid: i64,
}

/// One statement of the top list.
#[derive(Debug, Clone, Serialize)]
pub struct TopStatement {
    pub calls: i64,
    pub per_task: f64,
    pub rows: i64,
    pub mean_ms: f64,
    /// Whitespace collapsed, truncated.
    pub query: String,
}

/// What one measured phase cost the database.
#[derive(Debug, Clone, Serialize)]
pub struct Cost {
    pub tasks: u64,
    /// Statements executed in the bench database (BEGIN and COMMIT included).
    pub statements: i64,
    pub statements_per_task: f64,
    /// Transactions that wrote (transaction ids assigned, cluster-wide, savepoints that wrote included).
    pub write_transactions: i64,
    pub write_transactions_per_task: f64,
    /// `xact_commit` of pg_stat_database for the bench database; PostgreSQL publishes backends'
    /// counters when they go idle (up to ~10 s late), so this may undercount.
    pub xact_commit: i64,
    pub top: Vec<TopStatement>,
}

fn stmt(sql: &str) -> Statement {
    Statement::from_string(DbBackend::Postgres, sql.to_owned())
}

impl Probe {
    /// Creates the extension in the bench database; `Err(why)` when it cannot be used.
    pub async fn open(conn: DatabaseConnection) -> Result<Self, String> {
        conn.execute_raw(stmt("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
            .await
            .map_err(|e| format!("CREATE EXTENSION pg_stat_statements: {e}"))?;
        conn.query_one_raw(stmt("SELECT count(*) AS n FROM pg_stat_statements")).await.map_err(|e| {
            format!("pg_stat_statements is not usable ({e}); start PostgreSQL with shared_preload_libraries=pg_stat_statements (scripts/services does)")
        })?;
        Ok(Self { conn })
    }

    async fn int(&self, sql: &str, col: &str) -> Result<i64, BenchError> {
        let row =
            self.conn.query_one_raw(stmt(sql)).await?.ok_or_else(|| BenchError::Database(format!("{sql}: no row")))?;
        Ok(row.try_get("", col)?)
    }

    async fn counters(&self) -> Result<Mark, BenchError> {
        let xact_commit =
            self.int("SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()", "n").await?;
        let next_xid = self.int("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS n", "n").await?;
        Ok(Mark { xact_commit, next_xid })
    }

    /// Resets the statement statistics and reads the counters: call right before the phase.
    pub async fn begin(&self) -> Result<Mark, BenchError> {
        self.conn.execute_raw(stmt("SELECT pg_stat_statements_reset()")).await?;
        self.counters().await
    }

    /// The cost of the phase since `mark`, which completed `tasks` tasks.
    pub async fn end(&self, mark: Mark, tasks: u64) -> Result<Cost, BenchError> {
        let now = self.counters().await?;
        let mine = format!("dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND {OWN}");
        let statements = self
            .int(&format!("SELECT coalesce(sum(calls), 0)::bigint AS n FROM pg_stat_statements WHERE {mine}"), "n")
            .await?;
        let per = |n: i64| if tasks == 0 { 0.0 } else { n as f64 / tasks as f64 };
        let sql = format!(
            "SELECT calls, rows, mean_exec_time AS mean_ms, left(regexp_replace(query, '\\s+', ' ', 'g'), 200) AS query \
             FROM pg_stat_statements WHERE {mine} ORDER BY calls DESC LIMIT 10"
        );
        let mut top = Vec::new();
        for row in self.conn.query_all_raw(stmt(&sql)).await? {
            let calls: i64 = row.try_get("", "calls")?;
            top.push(TopStatement {
                calls,
                per_task: per(calls),
                rows: row.try_get("", "rows")?,
                mean_ms: row.try_get("", "mean_ms")?,
                query: row.try_get("", "query")?,
            });
        }
        // The probe only reads: it takes no transaction id.
        let write_transactions = (now.next_xid - mark.next_xid).max(0);
        Ok(Cost {
            tasks,
            statements,
            statements_per_task: per(statements),
            write_transactions,
            write_transactions_per_task: per(write_transactions),
            xact_commit: now.xact_commit - mark.xact_commit,
            top,
        })
    }
}
