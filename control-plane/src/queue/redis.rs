//! `RedisQueue`: the dispatch queue on Redis Streams, one stream per (tenant, task type), consumer group `braid`.
//!
//! Connections: two bb8 pools of multiplexed connections. Short commands
//! (publish, ack, depth, giving entries back) share the `ops` pool of `pool_size`.
//! A blocking `XREADGROUP` holds its connection for up to its `BLOCK` time
//! (Redis answers a connection's commands in order, so nothing else may use it
//! meanwhile), so reads take a connection of their own from a separate `reads`
//! pool, opened on demand and closed when idle: blocked readers never starve
//! publishers, and a replica needs about one read connection per worker stream
//! that is waiting at the same moment (`read_connections`, 512 by default).

mod conn;
mod read;

use self::conn::{Pool, from_redis};
use super::{Delivery, DispatchQueue, QueueError};
use redis::Value;
use redis::streams::StreamInfoGroupsReply;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;
use tokio::sync::oneshot;
use uuid::Uuid;

/// The consumer group every stream is read through.
const GROUP: &str = "braid";
/// The entry field holding the task id.
const FIELD: &str = "t";
/// Approximate cap on a stream's length (`XADD … MAXLEN ~`): acked entries are
/// deleted, so only a queue nobody reads gets near it; trimmed ids come back
/// through the reconciler.
const MAX_STREAM_LEN: u64 = 1_000_000;
/// Reply timeout for short commands.
const OP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a call waits for a pooled connection (so, with Redis down, how long it takes to fail).
const POOL_WAIT: Duration = Duration::from_secs(2);
/// Pooled connections idle this long are closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default size of the pool for blocking reads.
pub const DEFAULT_READ_CONNECTIONS: u32 = 512;

/// The stream holding the ready task ids of one task type of one tenant.
pub fn stream_key(tenant: &str, task_type: &str) -> String {
    format!("braid:{tenant}:q:{task_type}")
}

/// The dispatch queue on Redis Streams. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RedisQueue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ops: Pool,
    reads: Pool,
    /// Which requested type a read serves first; turns on every read.
    rotation: AtomicUsize,
}

impl RedisQueue {
    /// Connects with `pool_size` connections for short commands and
    /// [`DEFAULT_READ_CONNECTIONS`] for blocking reads; fails unless Redis answers `PING`.
    pub async fn connect(url: &str, pool_size: u32) -> Result<Self, QueueError> {
        Self::connect_with(url, pool_size, DEFAULT_READ_CONNECTIONS).await
    }

    /// Like [`RedisQueue::connect`], choosing the bound on concurrent blocking reads too.
    pub async fn connect_with(url: &str, pool_size: u32, read_connections: u32) -> Result<Self, QueueError> {
        let ops = Pool::new(url, OP_TIMEOUT, pool_size, POOL_WAIT, IDLE_TIMEOUT)?;
        let reads = Pool::new(url, OP_TIMEOUT, read_connections, POOL_WAIT, IDLE_TIMEOUT)?;
        let queue = Self { inner: Arc::new(Inner { ops, reads, rotation: AtomicUsize::new(0) }) };
        let mut c = queue.inner.ops.get().await?;
        c.query::<()>(&redis::cmd("PING")).await.map_err(from_redis)?;
        drop(c);
        Ok(queue)
    }

    /// `Some(policy)` when Redis may evict keys under memory pressure (its
    /// `maxmemory-policy` is not `noeviction`): evicted streams lose ready task
    /// ids until the reconciler restores them, so the server should warn loudly.
    /// `None` when the policy is `noeviction` or `CONFIG` is not permitted.
    pub async fn check_eviction_policy(&self) -> Result<Option<String>, QueueError> {
        let mut c = self.inner.ops.get().await?;
        let cmd = redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy").to_owned();
        match c.query::<HashMap<String, String>>(&cmd).await {
            Ok(config) => Ok(config.get("maxmemory-policy").filter(|p| *p != "noeviction").cloned()),
            Err(e) if e.code().is_some() => {
                tracing::debug!(error = %e, "cannot read maxmemory-policy");
                Ok(None)
            }
            Err(e) => Err(from_redis(e)),
        }
    }
}

/// `task_types` without repeats, in order.
fn distinct(task_types: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(task_types.len());
    for t in task_types {
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

/// Server errors of a pipeline run with `ignore_errors`: `NOGROUP` is fine (the
/// group is gone, and with it what there was to acknowledge), anything else is not.
fn check_replies(replies: Vec<redis::RedisResult<Value>>) -> Result<(), QueueError> {
    for reply in replies {
        match reply {
            Ok(_) => {}
            Err(e) if e.code() == Some("NOGROUP") => {}
            Err(e) => return Err(from_redis(e)),
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl DispatchQueue for RedisQueue {
    async fn publish(&self, tenant: &str, items: &[(String, Uuid)]) -> Result<(), QueueError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (task_type, task_id) in items {
            pipe.cmd("XADD")
                .arg(stream_key(tenant, task_type))
                .arg("MAXLEN")
                .arg("~")
                .arg(MAX_STREAM_LEN)
                .arg("*")
                .arg(FIELD)
                .arg(task_id.to_string())
                .ignore();
        }
        let mut c = self.inner.ops.get().await?;
        c.query_pipe::<()>(&pipe).await.map_err(from_redis)
    }

    async fn read(
        &self,
        tenant: &str,
        task_types: &[String],
        consumer: &str,
        max: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        let types = distinct(task_types);
        if max == 0 {
            return Ok(Vec::new());
        }
        if types.is_empty() {
            tokio::time::sleep(block).await;
            return Ok(Vec::new());
        }
        // The fetch runs on its own task, so a caller that drops this future
        // mid-read does not strand what the read took: it is given back.
        let (tx, rx) = oneshot::channel();
        let inner = Arc::clone(&self.inner);
        let (tenant, consumer) = (tenant.to_owned(), consumer.to_owned());
        tokio::spawn(async move {
            let mut got = match inner.fetch(&tenant, &consumer, &types, max, block).await {
                Ok(got) => got,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let surplus = got.split_off(got.len().min(max));
            inner.give_back(&tenant, &surplus).await;
            if let Err(Ok(unwanted)) = tx.send(Ok(got)) {
                inner.give_back(&tenant, &unwanted).await;
            }
        });
        rx.await.map_err(|_| QueueError::Internal("queue read task ended without an answer".into()))?
    }

    async fn ack(&self, tenant: &str, deliveries: &[Delivery]) -> Result<(), QueueError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let mut by_type: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for d in deliveries {
            by_type.entry(&d.task_type).or_default().push(&d.entry);
        }
        let mut pipe = redis::pipe();
        for (task_type, ids) in &by_type {
            let key = stream_key(tenant, task_type);
            pipe.cmd("XACK").arg(&key).arg(GROUP).arg(ids);
            pipe.cmd("XDEL").arg(&key).arg(ids);
        }
        pipe.ignore_errors();
        let mut c = self.inner.ops.get().await?;
        check_replies(c.query_pipe(&pipe).await.map_err(from_redis)?)
    }

    async fn depth(&self, tenant: &str, task_type: &str) -> Result<u64, QueueError> {
        let key = stream_key(tenant, task_type);
        let mut pipe = redis::pipe();
        pipe.cmd("XLEN").arg(&key).cmd("XINFO").arg("GROUPS").arg(&key).ignore_errors();
        let mut c = self.inner.ops.get().await?;
        let mut replies: Vec<redis::RedisResult<Value>> = c.query_pipe(&pipe).await.map_err(from_redis)?;
        drop(c);
        let groups = replies.pop().ok_or_else(|| QueueError::Protocol("short XINFO reply".into()))?;
        let len = replies.pop().ok_or_else(|| QueueError::Protocol("short XLEN reply".into()))?;
        let len: u64 = redis::from_redis_value(len.map_err(from_redis)?)
            .map_err(|e| QueueError::Protocol(format!("XLEN reply: {e}")))?;
        // No stream yet ("no such key"): nothing waits.
        let Ok(groups) = groups else { return Ok(len) };
        let groups: StreamInfoGroupsReply =
            redis::from_redis_value(groups).map_err(|e| QueueError::Protocol(format!("XINFO GROUPS reply: {e}")))?;
        let Some(group) = groups.groups.into_iter().find(|g| g.name == GROUP) else {
            // Nobody has read yet: every entry waits.
            return Ok(len);
        };
        // `lag` (Redis 7) can be unknown; acked entries are deleted, so what is in
        // the stream and not pending is what waits.
        Ok(group.lag.map_or_else(|| len.saturating_sub(group.pending as u64), |lag| lag as u64))
    }

    async fn release_consumer(&self, tenant: &str, task_types: &[String], consumer: &str) -> Result<(), QueueError> {
        let mut pipe = redis::pipe();
        for task_type in distinct(task_types) {
            pipe.cmd("XGROUP").arg("DELCONSUMER").arg(stream_key(tenant, &task_type)).arg(GROUP).arg(consumer);
        }
        if pipe.is_empty() {
            return Ok(());
        }
        // A missing stream or group (never used, or lost) has no consumer to forget.
        pipe.ignore_errors();
        let mut c = self.inner.ops.get().await?;
        let replies: Vec<redis::RedisResult<Value>> = c.query_pipe(&pipe).await.map_err(from_redis)?;
        for e in replies.into_iter().filter_map(Result::err) {
            tracing::debug!(error = %e, "XGROUP DELCONSUMER");
        }
        Ok(())
    }
}
