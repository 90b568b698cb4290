//! Reading with `XREADGROUP`: at most `max` across several streams, groups created on demand, surplus handed back.
//!
//! `COUNT` applies per stream, so a read asks each stream for an equal share of
//! what is still wanted and tops up from the streams that filled their share
//! (one round trip in the common case). Entries Redis delivered beyond `max`
//! are given back at once: re-added to their stream, and the delivered copy
//! acked and deleted (one more round trip, only when there is a surplus), so a
//! consumer never sits on entries it cannot use while other workers are idle.
//! The fetch runs on its own task: when the caller gives up on a read (drops
//! the future), what the read took is given back the same way.

use super::conn::{Conn, from_redis};
use super::{FIELD, GROUP, Inner, MAX_STREAM_LEN, OP_TIMEOUT, stream_key};
use crate::queue::{Delivery, QueueError};
use redis::Value;
use redis::streams::{StreamId, StreamReadReply};
use std::sync::atomic::Ordering;
use std::time::Duration;
use uuid::Uuid;

/// Extra time a blocking read's reply may take beyond its `BLOCK`.
const READ_MARGIN: Duration = Duration::from_secs(5);
/// Bound on follow-up reads that top up from streams which had more.
const MAX_ROUNDS: usize = 4;

impl Inner {
    /// Reads up to `max` entries from the streams of `types` (more when several
    /// streams answer: at most `max + types - 1`), alternating between types
    /// and starting with a different type on every call.
    pub(super) async fn fetch(
        &self,
        tenant: &str,
        consumer: &str,
        types: &[String],
        max: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        let keys: Vec<String> = types.iter().map(|t| stream_key(tenant, t)).collect();
        let mut conn = self.reads.get().await?;
        let mut per_type: Vec<Vec<Delivery>> = vec![Vec::new(); types.len()];
        let mut malformed: Vec<(usize, String)> = Vec::new();
        let mut active: Vec<usize> = (0..types.len()).collect();
        let mut need = max;
        let mut wait = block;
        let mut failure = None;
        for _ in 0..MAX_ROUNDS {
            let count = need.div_ceil(active.len());
            let ask: Vec<&str> = active.iter().map(|&i| keys[i].as_str()).collect();
            let reply = match xreadgroup(&mut conn, &ask, consumer, count, wait).await {
                Ok(reply) => reply,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            wait = Duration::ZERO;
            let mut full = Vec::new();
            for stream in reply.keys {
                let Some(i) = keys.iter().position(|k| *k == stream.key) else {
                    tracing::warn!(key = %stream.key, "XREADGROUP answered for a stream it was not asked about");
                    continue;
                };
                if stream.ids.len() >= count {
                    full.push(i);
                }
                need = need.saturating_sub(stream.ids.len());
                for entry in stream.ids {
                    match task_id(&entry) {
                        Some(task_id) => {
                            per_type[i].push(Delivery { task_type: types[i].clone(), task_id, entry: entry.id })
                        }
                        None => malformed.push((i, entry.id)),
                    }
                }
            }
            if need == 0 || full.is_empty() {
                break;
            }
            active = full;
        }
        drop(conn);
        if !malformed.is_empty() {
            self.discard(tenant, types, malformed).await;
        }
        let start = self.rotation.fetch_add(1, Ordering::Relaxed);
        let got = interleave(per_type, start);
        match failure {
            // What the first rounds read is still good; report a failure only when the read brought nothing.
            Some(e) if got.is_empty() => Err(e),
            Some(e) => {
                tracing::debug!(error = %e, "top-up read failed after a successful read");
                Ok(got)
            }
            None => Ok(got),
        }
    }

    /// Puts delivered entries nobody will use back at the end of their queue
    /// (`XADD` a copy, `XACK` and `XDEL` the delivered one), in one round trip.
    /// On failure they stay pending in Redis and the reconciler re-publishes
    /// their tasks.
    pub(super) async fn give_back(&self, tenant: &str, deliveries: &[Delivery]) {
        if deliveries.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for d in deliveries {
            let key = stream_key(tenant, &d.task_type);
            pipe.cmd("XADD").arg(&key).arg("MAXLEN").arg("~").arg(MAX_STREAM_LEN).arg("*");
            pipe.arg(FIELD).arg(d.task_id.to_string()).ignore();
            pipe.cmd("XACK").arg(&key).arg(GROUP).arg(&d.entry).ignore();
            pipe.cmd("XDEL").arg(&key).arg(&d.entry).ignore();
        }
        if let Err(e) = self.run_ignoring_errors(&pipe).await {
            tracing::warn!(error = %e, count = deliveries.len(), "could not give back queue entries");
        }
    }

    /// Acks and deletes entries without a readable task id (written by something
    /// other than Braid), so they do not sit in the pending list forever.
    async fn discard(&self, tenant: &str, types: &[String], entries: Vec<(usize, String)>) {
        tracing::warn!(count = entries.len(), "discarding queue entries without a valid task id field");
        let mut pipe = redis::pipe();
        for (i, id) in &entries {
            let key = stream_key(tenant, &types[*i]);
            pipe.cmd("XACK").arg(&key).arg(GROUP).arg(id).ignore();
            pipe.cmd("XDEL").arg(&key).arg(id).ignore();
        }
        if let Err(e) = self.run_ignoring_errors(&pipe).await {
            tracing::warn!(error = %e, "could not discard malformed queue entries");
        }
    }

    /// Runs a pipeline of ignored commands on the ops pool; server errors of
    /// single commands (e.g. `NOGROUP` after a flush) do not fail it.
    async fn run_ignoring_errors(&self, pipe: &redis::Pipeline) -> Result<(), QueueError> {
        let mut pipe = pipe.clone();
        pipe.ignore_errors();
        let mut conn = self.ops.get().await?;
        conn.query_pipe::<()>(&pipe).await.map_err(from_redis)
    }
}

/// One from each type in turn, starting with type `start % types`.
fn interleave(per_type: Vec<Vec<Delivery>>, start: usize) -> Vec<Delivery> {
    let n = per_type.len().max(1);
    let total = per_type.iter().map(Vec::len).sum();
    let mut iters: Vec<_> = per_type.into_iter().map(Vec::into_iter).collect();
    iters.rotate_left(start % n);
    let mut out = Vec::with_capacity(total);
    while out.len() < total {
        out.extend(iters.iter_mut().filter_map(Iterator::next));
    }
    out
}

/// The task id in an entry's `t` field.
fn task_id(entry: &StreamId) -> Option<Uuid> {
    entry.get::<String>(FIELD).and_then(|s| Uuid::parse_str(&s).ok())
}

/// One `XREADGROUP … STREAMS k… >…`; on `NOGROUP` (first use, or Redis lost its
/// data) creates the missing groups and tries once more.
async fn xreadgroup(
    conn: &mut Conn,
    keys: &[&str],
    consumer: &str,
    count: usize,
    block: Duration,
) -> Result<StreamReadReply, QueueError> {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP").arg(GROUP).arg(consumer).arg("COUNT").arg(count);
    if !block.is_zero() {
        // `BLOCK 0` would wait forever: never send it; round sub-millisecond waits up.
        let ms = u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1);
        cmd.arg("BLOCK").arg(ms);
    }
    cmd.arg("STREAMS").arg(keys).arg(vec![">"; keys.len()]);
    let timeout = if block.is_zero() { OP_TIMEOUT } else { block.saturating_add(READ_MARGIN) };
    conn.set_response_timeout(timeout);
    match conn.query::<Option<StreamReadReply>>(&cmd).await {
        Ok(reply) => Ok(reply.unwrap_or_default()),
        Err(e) if e.code() == Some("NOGROUP") => {
            create_groups(conn, keys).await?;
            conn.set_response_timeout(timeout);
            conn.query::<Option<StreamReadReply>>(&cmd).await.map(Option::unwrap_or_default).map_err(from_redis)
        }
        Err(e) => Err(from_redis(e)),
    }
}

/// `XGROUP CREATE key braid 0 MKSTREAM` for every key, in one round trip; a
/// group that already exists (`BUSYGROUP`) is fine. Starting at `0` delivers
/// whatever was published before the group existed.
async fn create_groups(conn: &mut Conn, keys: &[&str]) -> Result<(), QueueError> {
    tracing::debug!(?keys, "creating consumer groups");
    let mut pipe = redis::pipe();
    for key in keys {
        pipe.cmd("XGROUP").arg("CREATE").arg(*key).arg(GROUP).arg("0").arg("MKSTREAM");
    }
    pipe.ignore_errors();
    conn.set_response_timeout(OP_TIMEOUT);
    let replies: Vec<redis::RedisResult<Value>> = conn.query_pipe(&pipe).await.map_err(from_redis)?;
    for reply in replies {
        match reply {
            Ok(_) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(from_redis(e)),
        }
    }
    Ok(())
}
