//! The dispatch queue: Redis Streams (a real Redis at `REDIS_URL`) and the in-process queue, same contract.

use braid_control_plane::queue::{Delivery, DispatchQueue, InProcessQueue, RedisQueue, stream_key};
use redis::aio::MultiplexedConnection;
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, timeout};
use uuid::Uuid;

/// Upper bound for anything that should happen "at once".
const SOON: Duration = Duration::from_secs(10);

fn redis_url() -> String {
    std::env::var("REDIS_URL").expect(
        "REDIS_URL is not set: the queue tests need a real Redis; run them through scripts/test \
         (or `eval \"$(scripts/services start)\"` first)",
    )
}

async fn redis_queue() -> RedisQueue {
    RedisQueue::connect(&redis_url(), 4).await.expect("connect to REDIS_URL")
}

/// A plain connection for inspecting and damaging the server behind the queue's back.
async fn raw() -> MultiplexedConnection {
    let client = redis::Client::open(redis_url()).expect("REDIS_URL parses");
    client.get_multiplexed_async_connection().await.expect("raw connection")
}

/// A tenant of its own, so tests running in parallel on one Redis never meet.
fn tenant() -> String {
    format!("test-{}", Uuid::new_v4())
}

fn types(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    timeout(SOON, fut).await.unwrap_or_else(|_| panic!("{what} did not finish within {SOON:?}"))
}

/// Publishes `n` fresh ids of `task_type` and returns them.
async fn publish_n(q: &dyn DispatchQueue, tenant: &str, task_type: &str, n: usize) -> Vec<Uuid> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let items: Vec<(String, Uuid)> = ids.iter().map(|id| (task_type.to_owned(), *id)).collect();
    q.publish(tenant, &items).await.expect("publish");
    ids
}

/// Reads (not waiting) until a read comes back empty; checks `max` on every read.
async fn drain(q: &dyn DispatchQueue, tenant: &str, tt: &[String], consumer: &str, max: usize) -> Vec<Delivery> {
    let mut all = Vec::new();
    loop {
        let got = q.read(tenant, tt, consumer, max, Duration::ZERO).await.expect("read");
        assert!(got.len() <= max, "read returned {} > max {max}", got.len());
        if got.is_empty() {
            return all;
        }
        all.extend(got);
    }
}

/// Runs `body` once on the in-process queue and once on Redis.
macro_rules! on_both_queues {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn in_process() {
                within("test", $body(Arc::new(InProcessQueue::new()) as Arc<dyn DispatchQueue>)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                within("test", $body(Arc::new(redis_queue().await) as Arc<dyn DispatchQueue>)).await;
            }
        }
    };
}

async fn round_trip(q: Arc<dyn DispatchQueue>) {
    let t = tenant();
    let ids = publish_n(&*q, &t, "email", 3).await;
    let got = q.read(&t, &types(&["email"]), "c1", 10, Duration::ZERO).await.unwrap();
    assert_eq!(got.iter().map(|d| d.task_id).collect::<Vec<_>>(), ids, "FIFO per type");
    assert!(got.iter().all(|d| d.task_type == "email"));
    q.ack(&t, &got).await.unwrap();
    assert!(q.read(&t, &types(&["email"]), "c1", 10, Duration::ZERO).await.unwrap().is_empty());
    q.ack(&t, &[]).await.unwrap();
    q.publish(&t, &[]).await.unwrap();
}
on_both_queues!(publish_read_ack_round_trip, round_trip);

async fn max_across_types(q: Arc<dyn DispatchQueue>) {
    let t = tenant();
    let mut published: HashSet<Uuid> = HashSet::new();
    for (tt, n) in [("a", 4), ("b", 3), ("c", 3)] {
        published.extend(publish_n(&*q, &t, tt, n).await);
    }
    let tt = types(&["a", "b", "c"]);
    let got = drain(&*q, &t, &tt, "c1", 4).await;
    let seen: HashSet<Uuid> = got.iter().map(|d| d.task_id).collect();
    assert_eq!(got.len(), 10, "every entry exactly once: {got:?}");
    assert_eq!(seen, published);
    q.ack(&t, &got).await.unwrap();
}
on_both_queues!(read_respects_max_across_types_and_loses_nothing, max_across_types);

async fn fair(q: Arc<dyn DispatchQueue>) {
    let t = tenant();
    publish_n(&*q, &t, "busy", 50).await;
    let rare = publish_n(&*q, &t, "rare", 1).await;
    let got = q.read(&t, &types(&["busy", "rare"]), "c1", 2, Duration::ZERO).await.unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.iter().any(|d| d.task_id == rare[0]), "a busy type starves another: {got:?}");
}
on_both_queues!(a_busy_type_does_not_starve_another, fair);

async fn alternate(q: Arc<dyn DispatchQueue>) {
    let t = tenant();
    publish_n(&*q, &t, "x", 10).await;
    publish_n(&*q, &t, "y", 10).await;
    let tt = types(&["x", "y"]);
    let mut seen = Vec::new();
    for _ in 0..6 {
        let got = q.read(&t, &tt, "c1", 1, Duration::ZERO).await.unwrap();
        assert_eq!(got.len(), 1);
        seen.push(got[0].task_type.clone());
    }
    let xs = seen.iter().filter(|t| *t == "x").count();
    assert!((2..=4).contains(&xs), "one read at a time still serves both types: {seen:?}");
}
on_both_queues!(reads_of_one_serve_types_in_turn, alternate);

/// A read waiting on two types returns as soon as one of them gets an entry.
async fn block_returns_early(q: Arc<dyn DispatchQueue>, t: String, started_reading: impl Future<Output = ()>) {
    let tt = types(&["slow", "fast"]);
    let started = Instant::now();
    let reader = {
        let (q, t, tt) = (Arc::clone(&q), t.clone(), tt.clone());
        tokio::spawn(async move { q.read(&t, &tt, "c1", 5, Duration::from_secs(60)).await })
    };
    started_reading.await;
    let id = publish_n(&*q, &t, "fast", 1).await;
    let got = within("blocked read", reader).await.unwrap().unwrap();
    assert_eq!(got.iter().map(|d| d.task_id).collect::<Vec<_>>(), id);
    assert!(started.elapsed() < Duration::from_secs(30), "the read waited for its whole block");
}

mod a_blocked_read_returns_when_something_is_published {
    use super::*;

    /// One thread: yielding once lets the spawned read run until it waits.
    #[tokio::test(flavor = "current_thread")]
    async fn in_process() {
        let q = Arc::new(InProcessQueue::new());
        within("test", block_returns_early(q, tenant(), tokio::task::yield_now())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis() {
        let q = Arc::new(redis_queue().await);
        let t = tenant();
        within("test", block_returns_early(q, t.clone(), redis_group_exists(&t, "fast"))).await;
    }
}

/// Waits until a read on a fresh (or lost) stream is in: its `NOGROUP` recovery
/// creates the group right before it sends the blocking `XREADGROUP` again. (A
/// blocked consumer is not listed by `XINFO CONSUMERS` in Redis 7.0, and
/// `CLIENT LIST` does not show which key a client waits on.) If the publish
/// still wins the race to the server, the read returns at once: the test
/// passes without having blocked, it never flakes.
async fn redis_group_exists(tenant: &str, task_type: &str) {
    let mut conn = raw().await;
    let key = stream_key(tenant, task_type);
    within("the read to start", async {
        loop {
            let cmd = redis::cmd("XINFO").arg("GROUPS").arg(&key).to_owned();
            if let Ok(groups) = cmd.query_async::<redis::Value>(&mut conn).await
                && format!("{groups:?}").contains("braid")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
}

async fn no_block(q: Arc<dyn DispatchQueue>) {
    let t = tenant();
    // Zero means "do not wait" (Redis' `BLOCK 0` would wait forever).
    let got = within("non-blocking read", q.read(&t, &types(&["a"]), "c1", 5, Duration::ZERO)).await.unwrap();
    assert!(got.is_empty());
    let started = Instant::now();
    let got = q.read(&t, &types(&["a"]), "c1", 5, Duration::from_millis(200)).await.unwrap();
    assert!(got.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(150), "returned before its block elapsed");
    let got = within("max 0", q.read(&t, &types(&["a"]), "c1", 0, Duration::from_secs(60))).await.unwrap();
    assert!(got.is_empty());
}
on_both_queues!(zero_block_does_not_wait_and_a_block_elapses, no_block);

async fn two_consumers(q: Arc<dyn DispatchQueue>) {
    let t = tenant();
    let published: HashSet<Uuid> = publish_n(&*q, &t, "a", 40).await.into_iter().collect();
    let reader = |consumer: &'static str| {
        let (q, t) = (Arc::clone(&q), t.clone());
        tokio::spawn(async move { drain(&*q, &t, &types(&["a"]), consumer, 3).await })
    };
    let (one, two) = (reader("c1"), reader("c2"));
    let (one, two) = (one.await.unwrap(), two.await.unwrap());
    let mut seen = HashSet::new();
    for d in one.iter().chain(&two) {
        assert!(seen.insert(d.task_id), "{} delivered twice", d.task_id);
    }
    assert_eq!(seen, published);
}
on_both_queues!(two_consumers_never_share_an_entry, two_consumers);

async fn depth(q: Arc<dyn DispatchQueue>) {
    let t = tenant();
    assert_eq!(q.depth(&t, "a").await.unwrap(), 0, "no stream yet");
    publish_n(&*q, &t, "a", 5).await;
    publish_n(&*q, &t, "b", 1).await;
    assert_eq!(q.depth(&t, "a").await.unwrap(), 5, "nobody has read yet");
    let got = q.read(&t, &types(&["a"]), "c1", 2, Duration::ZERO).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(q.depth(&t, "a").await.unwrap(), 3, "delivered entries no longer wait");
    q.ack(&t, &got).await.unwrap();
    assert_eq!(q.depth(&t, "a").await.unwrap(), 3);
    assert_eq!(q.depth(&t, "b").await.unwrap(), 1);
    assert_eq!(q.depth(&tenant(), "a").await.unwrap(), 0, "tenants are separate");
}
on_both_queues!(depth_counts_what_waits, depth);

// --- Redis only ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_recovers_from_lost_data() {
    // Other tests share this Redis, so instead of FLUSHALL this deletes only this
    // tenant's stream: the same NOGROUP condition a flush or a restart without
    // persistence produces.
    let (q, t, tt) = (redis_queue().await, tenant(), types(&["a"]));
    assert!(q.read(&t, &tt, "c1", 5, Duration::ZERO).await.unwrap().is_empty(), "creates the group");
    publish_n(&q, &t, "a", 3).await;
    let _: i64 = redis::cmd("DEL").arg(stream_key(&t, "a")).query_async(&mut raw().await).await.unwrap();
    let got = q.read(&t, &tt, "c1", 5, Duration::ZERO).await.expect("read recovers from NOGROUP");
    assert!(got.is_empty(), "the lost entries are gone (the reconciler re-publishes them)");
    let id = publish_n(&q, &t, "a", 1).await;
    let got = q.read(&t, &tt, "c1", 5, Duration::ZERO).await.unwrap();
    assert_eq!(got.iter().map(|d| d.task_id).collect::<Vec<_>>(), id);
    // Also blocking: the group is lost while nobody reads, then a blocked read waits for a publish.
    let _: i64 = redis::cmd("DEL").arg(stream_key(&t, "a")).query_async(&mut raw().await).await.unwrap();
    let reader = {
        let (q, t, tt) = (q.clone(), t.clone(), tt.clone());
        tokio::spawn(async move { q.read(&t, &tt, "c1", 5, Duration::from_secs(60)).await })
    };
    redis_group_exists(&t, "a").await;
    let id = publish_n(&q, &t, "a", 1).await;
    let got = within("blocked read", reader).await.unwrap().unwrap();
    assert_eq!(got.iter().map(|d| d.task_id).collect::<Vec<_>>(), id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_delivers_what_was_published_before_the_first_read() {
    let (q, t) = (redis_queue().await, tenant());
    let ids = publish_n(&q, &t, "a", 2).await;
    let got = q.read(&t, &types(&["a"]), "c1", 5, Duration::ZERO).await.unwrap();
    assert_eq!(got.iter().map(|d| d.task_id).collect::<Vec<_>>(), ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_acked_entries_are_gone_even_when_the_group_is_recreated() {
    let (q, t, tt) = (redis_queue().await, tenant(), types(&["a"]));
    let key = stream_key(&t, "a");
    let ids = publish_n(&q, &t, "a", 2).await;
    let got = q.read(&t, &tt, "c1", 5, Duration::ZERO).await.unwrap();
    assert_eq!(got.len(), 2);
    q.ack(&t, &got[..1]).await.unwrap();
    let mut conn = raw().await;
    let pending: (u64, redis::Value, redis::Value, redis::Value) =
        redis::cmd("XPENDING").arg(&key).arg("braid").query_async(&mut conn).await.unwrap();
    assert_eq!(pending.0, 1, "only the unacked entry is pending");
    let len: u64 = redis::cmd("XLEN").arg(&key).query_async(&mut conn).await.unwrap();
    assert_eq!(len, 1, "acked entries are deleted from the stream");
    // Losing the group makes the next read recreate it from the stream's start:
    // the unacked entry comes back, the acked one does not.
    let _: i64 = redis::cmd("XGROUP").arg("DESTROY").arg(&key).arg("braid").query_async(&mut conn).await.unwrap();
    let again = q.read(&t, &tt, "c2", 5, Duration::ZERO).await.unwrap();
    assert_eq!(again.iter().map(|d| d.task_id).collect::<Vec<_>>(), [ids[1]]);
    q.ack(&t, &again).await.unwrap();
    q.ack(&t, &got).await.expect("acking twice is harmless");
    let len: u64 = redis::cmd("XLEN").arg(&key).query_async(&mut conn).await.unwrap();
    assert_eq!(len, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_an_abandoned_read_loses_nothing() {
    let (q, t, tt) = (redis_queue().await, tenant(), types(&["a"]));
    let reader = {
        let (q, t, tt) = (q.clone(), t.clone(), tt.clone());
        tokio::spawn(async move { q.read(&t, &tt, "c1", 5, Duration::from_secs(2)).await })
    };
    redis_group_exists(&t, "a").await;
    reader.abort();
    let id = publish_n(&q, &t, "a", 1).await;
    // The abandoned read took the entry and gives it back to the queue.
    let got = within("next read", q.read(&t, &tt, "c2", 5, Duration::from_secs(5))).await.unwrap();
    assert_eq!(got.iter().map(|d| d.task_id).collect::<Vec<_>>(), id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_surplus_goes_back_to_the_queue() {
    let (q, t, tt) = (redis_queue().await, tenant(), types(&["a", "b", "c"]));
    let mut published = HashSet::new();
    for tt in ["a", "b", "c"] {
        published.extend(publish_n(&q, &t, tt, 1).await);
    }
    // COUNT is per stream: this read takes one entry from each stream, returns
    // one, and gives the other two back before it returns.
    let first = q.read(&t, &tt, "c1", 1, Duration::ZERO).await.unwrap();
    assert_eq!(first.len(), 1);
    let rest = drain(&q, &t, &tt, "c2", 5).await;
    assert_eq!(rest.len(), 2, "{rest:?}");
    let mut seen: HashSet<Uuid> = rest.iter().map(|d| d.task_id).collect();
    seen.insert(first[0].task_id);
    assert_eq!(seen, published);
    q.ack(&t, &first).await.unwrap();
    q.ack(&t, &rest).await.unwrap();
    let mut conn = raw().await;
    for tt in ["a", "b", "c"] {
        let len: u64 = redis::cmd("XLEN").arg(stream_key(&t, tt)).query_async(&mut conn).await.unwrap();
        assert_eq!(len, 0, "nothing left behind in {tt}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_released_consumer_is_forgotten() {
    let (q, t, tt) = (redis_queue().await, tenant(), types(&["a", "b"]));
    publish_n(&q, &t, "a", 1).await;
    let got = q.read(&t, &tt, "c1", 5, Duration::ZERO).await.unwrap();
    q.ack(&t, &got).await.unwrap();
    let consumers = |conn: &mut MultiplexedConnection| {
        let cmd = redis::cmd("XINFO").arg("CONSUMERS").arg(stream_key(&t, "a")).arg("braid").to_owned();
        let mut conn = conn.clone();
        async move { format!("{:?}", cmd.query_async::<redis::Value>(&mut conn).await.unwrap()) }
    };
    let mut conn = raw().await;
    assert!(consumers(&mut conn).await.contains("c1"));
    q.release_consumer(&t, &tt, "c1").await.unwrap();
    assert!(!consumers(&mut conn).await.contains("c1"), "c1 is forgotten");
    q.release_consumer(&tenant(), &tt, "c1").await.expect("releasing on missing streams is harmless");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_eviction_policy_check() {
    let q = redis_queue().await;
    let mut conn = raw().await;
    let set = |policy: &'static str| redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg(policy).to_owned();
    let before: Vec<String> =
        redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy").query_async(&mut conn).await.unwrap();
    let () = set("allkeys-lru").query_async(&mut conn).await.unwrap();
    let lru = q.check_eviction_policy().await;
    let () = set("noeviction").query_async(&mut conn).await.unwrap();
    let none = q.check_eviction_policy().await;
    let () = redis::cmd("CONFIG").arg("SET").arg(&before[0]).arg(&before[1]).query_async(&mut conn).await.unwrap();
    assert_eq!(lru.unwrap().as_deref(), Some("allkeys-lru"));
    assert_eq!(none.unwrap(), None);
}

#[tokio::test]
async fn redis_unreachable_is_unavailable() {
    let err = RedisQueue::connect("redis://127.0.0.1:1/", 1).await.expect_err("nothing listens on port 1");
    assert!(matches!(err, braid_control_plane::queue::QueueError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().to_lowercase().contains("refused"), "the cause is reported: {err}");
}
