//! A snapshot of the drill database after the system settled: runs, tasks, attempts, dead letters, worker streams.

use super::DrillError;
use crate::store::entity::{dead_letter, run, task, task_attempt, worker};
use sea_orm::{DatabaseConnection, EntityTrait, QueryOrder};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Every row the invariants look at (the drill database holds only the drill's own data).
#[derive(Debug, Default)]
pub struct Snapshot {
    pub runs: Vec<run::Model>,
    pub tasks: Vec<task::Model>,
    /// Ordered by task, then attempt.
    pub attempts: Vec<task_attempt::Model>,
    pub dead_letters: Vec<dead_letter::Model>,
    /// Worker stream id → worker name.
    pub streams: BTreeMap<Uuid, String>,
}

impl Snapshot {
    pub async fn read(db: &DatabaseConnection) -> Result<Self, DrillError> {
        let runs = run::Entity::find().order_by_asc(run::Column::Id).all(db).await?;
        let tasks = task::Entity::find().order_by_asc(task::Column::Id).all(db).await?;
        let attempts = task_attempt::Entity::find()
            .order_by_asc(task_attempt::Column::TaskId)
            .order_by_asc(task_attempt::Column::Attempt)
            .all(db)
            .await?;
        let dead_letters = dead_letter::Entity::find().all(db).await?;
        let streams = worker::Entity::find().all(db).await?.into_iter().map(|w| (w.id, w.name)).collect();
        Ok(Self { runs, tasks, attempts, dead_letters, streams })
    }

    /// Attempts of each task, oldest first.
    pub fn attempts_by_task(&self) -> BTreeMap<Uuid, Vec<&task_attempt::Model>> {
        let mut out: BTreeMap<Uuid, Vec<&task_attempt::Model>> = BTreeMap::new();
        for a in &self.attempts {
            out.entry(a.task_id).or_default().push(a);
        }
        out
    }

    /// The worker name behind a stream id (as recorded in `task_attempts.worker_id`).
    pub fn worker_name(&self, stream: Option<&str>) -> String {
        stream
            .and_then(|s| s.parse::<Uuid>().ok())
            .and_then(|id| self.streams.get(&id).cloned())
            .unwrap_or_else(|| "?".into())
    }
}
