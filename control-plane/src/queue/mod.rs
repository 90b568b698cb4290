//! The dispatch queue: a fast, loss-tolerant hint carrying ready task ids (Redis Streams or in-process).
//!
//! Postgres is the truth. The queue only says "this task may be ready": an entry
//! can be lost (Redis restart, `FLUSHALL`, trimming) and the reconciler
//! re-publishes it from Postgres; an entry can be delivered twice and the lease
//! statement in Postgres decides who gets the task. Callers therefore publish
//! after the commit that made tasks ready, and ack every delivery they read,
//! whether or not the lease took.

mod memory;
mod redis;

pub use self::memory::InProcessQueue;
pub use self::redis::{DEFAULT_READ_CONNECTIONS, RedisQueue, stream_key};

use crate::domain::flow::Priority;
use std::time::Duration;
use uuid::Uuid;

/// The queue a ready task of `task_type` and `priority` is published on: the task type itself
/// for normal priority, `TYPE#high` and `TYPE#low` for the others (`#` is never part of a task
/// type). A worker stream reads the lanes of its types highest first (see `engine::session`).
pub fn lane(task_type: &str, priority: Priority) -> String {
    match priority {
        Priority::Normal => task_type.to_owned(),
        Priority::High | Priority::Low => format!("{task_type}#{priority}"),
    }
}

/// The lanes of `types` at `priority`.
pub fn lanes(types: &[String], priority: Priority) -> Vec<String> {
    types.iter().map(|t| lane(t, priority)).collect()
}

/// One entry read from a task type's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub task_type: String,
    pub task_id: Uuid,
    /// Opaque handle that [`DispatchQueue::ack`] needs (the stream entry id for Redis).
    pub entry: String,
}

/// Why a queue operation failed. Every failure is retryable from the caller's
/// point of view: the queue is a hint, so the engine logs, counts, and carries on.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue's server could not be reached, or did not answer in time.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// The server answered with an error or with a reply we could not read.
    #[error("queue protocol error: {0}")]
    Protocol(String),
    /// A bug or a runtime shutting down (a queue task panicked or was cancelled).
    #[error("queue internal error: {0}")]
    Internal(String),
}

/// The dispatch queue, shared by the engine as `Arc<dyn DispatchQueue>`.
#[async_trait::async_trait]
pub trait DispatchQueue: Send + Sync + std::fmt::Debug {
    /// Appends task ids to the queue of each task type (after the Postgres commit
    /// that made them ready). Batched: one round trip per call for Redis.
    async fn publish(&self, tenant: &str, items: &[(String, Uuid)]) -> Result<(), QueueError>;

    /// Reads up to `max` deliveries across `task_types` for consumer `consumer`
    /// (one per worker stream), waiting up to `block` when none is available
    /// (`Duration::ZERO`: do not wait). Never returns more than `max`; returns
    /// nothing at once when `max` is 0, and nothing after `block` when
    /// `task_types` is empty. Types are served fairly: one busy type
    /// does not starve another. A read that is dropped before it returns loses
    /// nothing (what it took goes back to the queue).
    async fn read(
        &self,
        tenant: &str,
        task_types: &[String],
        consumer: &str,
        max: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, QueueError>;

    /// Acknowledges deliveries (batched, one round trip). Acked entries are never
    /// delivered again.
    async fn ack(&self, tenant: &str, deliveries: &[Delivery]) -> Result<(), QueueError>;

    /// Entries of one task type not yet delivered (best effort; for metrics and admin).
    async fn depth(&self, tenant: &str, task_type: &str) -> Result<u64, QueueError>;

    /// Forgets consumer `consumer` once its worker stream has ended and its last
    /// ack is done (Redis: `XGROUP DELCONSUMER` on each type's stream, so
    /// per-stream consumer names do not pile up in the groups). Entries it read
    /// and never acked are dropped from the pending list; their tasks come back
    /// through the reconciler. The default does nothing.
    async fn release_consumer(&self, tenant: &str, task_types: &[String], consumer: &str) -> Result<(), QueueError> {
        let _ = (tenant, task_types, consumer);
        Ok(())
    }
}
