//! The live feed: a run's events after a sequence, or every event of a tenant after a global id, stored first, then live by polling.

use super::{Engine, EngineError};
use crate::domain::records::{FeedEvent, RunEvent, Tenant};
use crate::store::events::{self, Settled};
use futures::Stream;
use std::collections::VecDeque;
use std::time::Duration;
use uuid::Uuid;

/// How often a feed looks for new events once it has delivered everything stored.
pub const POLL: Duration = Duration::from_millis(200);
/// Events read per look.
const BATCH: u64 = 500;
/// How old (by the engine's clock) an event must be before the all-runs feed hands it out on
/// SQLite, where one connection writes and commits in id order anyway.
pub const SETTLE: Duration = Duration::from_secs(1);
/// On PostgreSQL, global ids are taken at insert but transactions commit out of order, so a
/// reader that only asked `id > last` could pass over an event whose transaction commits late.
/// The feed hands out events inserted before the oldest transaction still writing started (by
/// the server's clock, less this margin): every id such a transaction commits is larger.
pub const WRITER_MARGIN: Duration = Duration::from_millis(10);

/// Where an all-runs feed begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedStart {
    /// With the events that settle from now on.
    Now,
    /// After this global event id (`0`: the whole stored log).
    After(u64),
}

type Events<T> = Result<T, EngineError>;

impl Engine {
    /// The events of a run with a sequence above `after`, then new ones as they are appended,
    /// ending after the run's last event once it is terminal. `NotFound` (before any event)
    /// when the run does not exist. WatchRun and the per-run SSE feed both serve this.
    pub async fn watch_run(
        &self,
        tenant: &Tenant,
        run_id: Uuid,
        after: u64,
    ) -> Result<impl Stream<Item = Events<RunEvent>> + Send + use<>, EngineError> {
        let first = self.run_batch(tenant, run_id, after).await?;
        let (engine, tenant) = (self.clone(), tenant.clone());
        Ok(futures::stream::unfold(Some(first), move |state| {
            let (engine, tenant) = (engine.clone(), tenant.clone());
            async move {
                let (mut buf, mut after, mut done) = state?;
                loop {
                    if let Some(e) = buf.pop_front() {
                        after = e.sequence;
                        return Some((Ok(e), Some((buf, after, done))));
                    }
                    if done {
                        return None;
                    }
                    tokio::time::sleep(POLL).await;
                    match engine.run_batch(&tenant, run_id, after).await {
                        Ok(next) => (buf, after, done) = next,
                        Err(e) => return Some((Err(e), None)),
                    }
                }
            }
        }))
    }

    /// One read of a run's log: the events after `after`, the sequence to continue from, and
    /// whether the log is complete. The run is read before its events: a run seen terminal
    /// has committed its last event, so that read includes it.
    async fn run_batch(
        &self,
        tenant: &Tenant,
        run_id: Uuid,
        after: u64,
    ) -> Result<(VecDeque<RunEvent>, u64, bool), EngineError> {
        let (events, run) = self.run_events(tenant, run_id, after, BATCH).await?;
        let done = run.state.is_terminal() && (events.len() as u64) < BATCH;
        let after = events.last().map_or(after, |e| e.sequence);
        Ok((events.into(), after, done))
    }

    /// Every event of the tenant's runs (of `workflow` only, if given) after `start`, in
    /// global id order, then live; it never ends by itself.
    pub async fn watch_events(
        &self,
        tenant: &Tenant,
        workflow: Option<String>,
        start: FeedStart,
    ) -> Result<impl Stream<Item = Events<FeedEvent>> + Send + use<>, EngineError> {
        let after = match start {
            FeedStart::After(id) => id,
            FeedStart::Now => events::last_settled_id(self.store.conn(), tenant, self.settled()).await?,
        };
        let (engine, tenant) = (self.clone(), tenant.clone());
        Ok(futures::stream::unfold(Some((VecDeque::new(), after, false)), move |state| {
            let (engine, tenant, workflow) = (engine.clone(), tenant.clone(), workflow.clone());
            async move {
                let (mut buf, mut after, mut caught_up): (VecDeque<FeedEvent>, u64, bool) = state?;
                loop {
                    if let Some(e) = buf.pop_front() {
                        after = e.id;
                        return Some((Ok(e), Some((buf, after, caught_up))));
                    }
                    if caught_up {
                        tokio::time::sleep(POLL).await;
                    }
                    match engine.settled_events(&tenant, workflow.as_deref(), after, BATCH).await {
                        Ok(events) => {
                            // A full batch means more is stored: read again without waiting.
                            caught_up = (events.len() as u64) < BATCH;
                            buf = events.into();
                        }
                        Err(e) => return Some((Err(e), None)),
                    }
                }
            }
        }))
    }

    /// The settled events of the tenant's runs (of `workflow` only, if given) after global id
    /// `after`, in id order, at most `limit`: one step of the all-runs feed.
    pub async fn settled_events(
        &self,
        tenant: &Tenant,
        workflow: Option<&str>,
        after: u64,
        limit: u64,
    ) -> Result<Vec<FeedEvent>, EngineError> {
        Ok(events::since(self.store.conn(), tenant, workflow, after, self.settled(), limit).await?)
    }

    /// Which events the all-runs feed may hand out: on PostgreSQL those inserted before the
    /// oldest transaction still writing began (so none can commit below them later); on SQLite
    /// (one writer) those stamped `SETTLE` before the engine's clock.
    fn settled(&self) -> Settled {
        match self.store.backend() {
            crate::store::Backend::Postgres => Settled::BeforeWriters { margin: WRITER_MARGIN },
            crate::store::Backend::Sqlite => Settled::Before { now: self.db_now(self.now()), settle: SETTLE },
        }
    }
}
