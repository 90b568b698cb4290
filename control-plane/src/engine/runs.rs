//! Reading runs: one run with its tasks, pages of runs, and a run's event log.

use super::{Engine, EngineError, page};
use crate::domain::records::{Page, Run, RunCursor, RunDetail, RunEvent, RunFilter, Tenant};
use crate::store::{events, runs, tasks};
use uuid::Uuid;

/// Parses a run id given by a client.
pub fn parse_run_id(field: &str, id: &str) -> Result<Uuid, EngineError> {
    Uuid::parse_str(id).map_err(|_| EngineError::invalid(field, format!("{id:?} is not a run id (a UUID)")))
}

impl Engine {
    /// A run with its tasks and their attempts.
    pub async fn get_run(&self, tenant: &Tenant, id: Uuid) -> Result<RunDetail, EngineError> {
        let db = self.store.conn();
        let run =
            runs::get(db, tenant, id).await?.ok_or_else(|| EngineError::NotFound(format!("run {id} not found")))?;
        let tasks = tasks::of_run(db, tenant, id).await?;
        Ok(RunDetail { run: run.run, tasks })
    }

    /// Runs newest first, filtered, one page at a time.
    pub async fn list_runs(
        &self,
        tenant: &Tenant,
        filter: &RunFilter,
        page_size: u32,
        page_token: &str,
    ) -> Result<Page<Run, String>, EngineError> {
        let cursor: Option<RunCursor> = page::decode(page_token)?;
        let limit = page::size(page_size);
        let items = runs::list(self.store.conn(), tenant, filter, cursor.as_ref(), limit + 1).await?;
        Ok(page::split(items, limit, |r| page::encode(&RunCursor { created_at: r.created_at, id: r.id })))
    }

    /// Events of a run after sequence `after`, oldest first, at most `limit`, and
    /// the run's current state, so a watcher knows when the log is complete.
    pub async fn run_events(
        &self,
        tenant: &Tenant,
        run_id: Uuid,
        after: u64,
        limit: u64,
    ) -> Result<(Vec<RunEvent>, Run), EngineError> {
        let db = self.store.conn();
        let run = runs::get(db, tenant, run_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("run {run_id} not found")))?;
        let events = events::after(db, tenant, run_id, after, limit).await?;
        Ok((events, run.run))
    }
}
