//! The live feed's rules on SQLite and PostgreSQL: settled events in global id order, resume by id, a late commit not skipped, WatchRun's resume by sequence.

mod common;

use braid_control_plane::domain::records::FeedEvent;
use braid_control_plane::engine::feed::{FeedStart, SETTLE};
use braid_control_plane::engine::trigger::TriggerRequest;
use braid_control_plane::engine::{Clock, Engine};
use braid_control_plane::queue::InProcessQueue;
use braid_control_plane::store::dbtime;
use braid_control_plane::store::events::{self, NewEvent, Settled};
use chrono::{DateTime, Utc};
use common::{TestDb, tenant, yaml};
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// A clock that moves only when told.
#[derive(Debug)]
struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    fn advance(&self, d: Duration) {
        *self.0.lock().unwrap() += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn manual(db: &TestDb) -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    let engine = Engine::new(db.store.clone(), clock.clone(), Arc::new(InProcessQueue::new()), *db.engine.settings());
    (engine, clock)
}

/// Past the settle window.
const SETTLED: Duration = Duration::from_millis(SETTLE.as_millis() as u64 + 1);

/// Every committed event of the tenant, settled or not.
async fn stored(db: &TestDb) -> Vec<FeedEvent> {
    events::since(db.store.conn(), &tenant(), None, 0, Settled::All, 10_000).await.unwrap()
}

/// Moves the manual clock (SQLite's "now") past the settle window, then waits (bounded) until
/// the feed after `after` has settled `n` events (PostgreSQL settles once no older transaction
/// is still writing, by its own clock).
async fn settled_after(e: &Engine, clock: &ManualClock, after: u64, n: usize) -> Vec<FeedEvent> {
    clock.advance(SETTLED);
    let deadline = tokio::time::Instant::now() + SETTLE * 10;
    loop {
        let got = e.settled_events(&tenant(), None, after, 10_000).await.unwrap();
        if got.len() >= n || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn flow(name: &str) -> String {
    format!(
        "name: {name}\ntasks:\n  - {{name: a, task_type: t}}\n  - {{name: b, task_type: t}}\n  - {{name: c, task_type: t, depends_on: [a, b]}}\n"
    )
}

async fn trigger(e: &Engine, workflow: &str) -> Uuid {
    let req = TriggerRequest { workflow_name: workflow.into(), input_json: "{}".into(), ..TriggerRequest::default() };
    e.trigger_run(&tenant(), &req).await.unwrap().run.run.id
}

fn ids(events: &[FeedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.id).collect()
}

async fn settled_events_in_id_order_resumable_and_filtered(db: &TestDb) {
    let (e, clock) = manual(db);
    for w in ["fa", "fb"] {
        e.put_workflow(&tenant(), &yaml(&flow(w))).await.unwrap();
    }
    let (ra, rb, ra2) = (trigger(&e, "fa").await, trigger(&e, "fb").await, trigger(&e, "fa").await);
    if db.store.backend() == braid_control_plane::store::Backend::Sqlite {
        // SQLite holds events back by age; PostgreSQL only behind a transaction still writing
        // (a_late_commit_below_a_visible_id_is_not_skipped_postgres).
        assert!(e.settled_events(&tenant(), None, 0, 100).await.unwrap().is_empty(), "young events are held back");
    }
    let committed = stored(db).await;
    assert!(committed.len() >= 6, "every run's creation events: {committed:?}");
    let all = settled_after(&e, &clock, 0, committed.len()).await;
    assert_eq!(all, committed, "once settled, every committed event");
    assert!(ids(&all).windows(2).all(|w| w[0] < w[1]), "global id order: {:?}", ids(&all));
    let runs: HashSet<Uuid> = all.iter().map(|f| f.event.run_id).collect();
    assert_eq!(runs, HashSet::from([ra, rb, ra2]));
    for r in [ra, rb, ra2] {
        let seqs: Vec<u64> = all.iter().filter(|f| f.event.run_id == r).map(|f| f.event.sequence).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "each run's own sequence, in order");
    }
    // Resuming after any id gives exactly the rest.
    for cut in [1, 3, all.len() - 1] {
        let rest = e.settled_events(&tenant(), None, all[cut - 1].id, 100).await.unwrap();
        assert_eq!(rest, all[cut..].to_vec());
    }
    let fa = e.settled_events(&tenant(), Some("fa"), 0, 100).await.unwrap();
    let expected: Vec<FeedEvent> = all.iter().filter(|f| f.event.run_id != rb).cloned().collect();
    assert_eq!(fa, expected, "the workflow filter keeps fa's runs only");
    let limited = e.settled_events(&tenant(), None, 0, 2).await.unwrap();
    assert_eq!(limited, all[..2].to_vec());
    // The stream serves the same, from a resume point.
    let streamed: Vec<FeedEvent> = e
        .watch_events(&tenant(), None, FeedStart::After(all[1].id))
        .await
        .unwrap()
        .take(all.len() - 2)
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(streamed, all[2..].to_vec());
}
on_both_backends!(settled_feed, settled_events_in_id_order_resumable_and_filtered);

async fn watch_run_resumes_after_a_sequence_and_ends_when_terminal(db: &TestDb) {
    db.engine.put_workflow(&tenant(), &yaml(&flow("wr"))).await.unwrap();
    let run = trigger(&db.engine, "wr").await;
    db.engine.cancel_run(&tenant(), run, "test").await.unwrap();
    let all: Vec<_> = db.engine.watch_run(&tenant(), run, 0).await.unwrap().map(Result::unwrap).collect().await;
    assert_eq!(all.last().unwrap().kind, "run_cancelled", "ends with the terminal event: {all:?}");
    assert_eq!(all.iter().map(|e| e.sequence).collect::<Vec<_>>(), (1..=all.len() as u64).collect::<Vec<_>>());
    let rest: Vec<_> = db.engine.watch_run(&tenant(), run, 2).await.unwrap().map(Result::unwrap).collect().await;
    assert_eq!(rest, all[2..].to_vec());
    let unknown = db.engine.watch_run(&tenant(), Uuid::now_v7(), 0).await.err().expect("an unknown run");
    assert!(matches!(unknown, braid_control_plane::engine::EngineError::NotFound(_)), "{unknown:?}");
}
on_both_backends!(watch_run, watch_run_resumes_after_a_sequence_and_ends_when_terminal);

/// Global ids are taken at insert, so a transaction that commits late leaves a hole below ids
/// already visible. A reader asking only `id > last` would pass over it; the settled feed
/// waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_commit_below_a_visible_id_is_not_skipped_postgres() {
    let db = TestDb::postgres().await;
    let (e, clock) = manual(&db);
    e.put_workflow(&tenant(), &yaml(&flow("late"))).await.unwrap();
    let (r1, r2) = (trigger(&e, "late").await, trigger(&e, "late").await);
    let before = stored(&db).await;
    let last = settled_after(&e, &clock, 0, before.len()).await.last().unwrap().id;
    assert_eq!(last, before.last().unwrap().id);

    // Stamped like the engine stamps on PostgreSQL: the transaction's start by its clock.
    let backend = db.store.backend();
    let slow = db.store.begin().await.unwrap();
    let at = dbtime::read(&slow, backend, clock.now()).await.unwrap();
    events::append(&slow, &tenant(), r1, &[NewEvent::run("probe_late", serde_json::json!({}))], at).await.unwrap();
    let quick = db.store.begin().await.unwrap();
    let at = dbtime::read(&quick, backend, clock.now()).await.unwrap();
    events::append(&quick, &tenant(), r2, &[NewEvent::run("probe_early", serde_json::json!({}))], at).await.unwrap();
    quick.commit().await.unwrap();

    let naive = events::since(db.store.conn(), &tenant(), None, last, Settled::All, 100).await.unwrap();
    assert_eq!(naive.iter().map(|f| f.event.kind.as_str()).collect::<Vec<_>>(), ["probe_early"]);
    assert!(naive[0].id > last + 1, "the early event's id is above the uncommitted one");
    assert!(e.settled_events(&tenant(), None, last, 100).await.unwrap().is_empty(), "nothing settled yet");

    slow.commit().await.unwrap();
    let settled = settled_after(&e, &clock, last, 2).await;
    assert_eq!(settled.iter().map(|f| f.event.kind.as_str()).collect::<Vec<_>>(), ["probe_late", "probe_early"]);
    assert!(settled[0].id < settled[1].id);
    db.finish().await;
}

/// Two control planes trigger runs concurrently while a reader follows the all-runs feed from
/// the start: it receives every stored event exactly once, in increasing id order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_feed_delivers_everything_once_postgres() {
    let db = TestDb::postgres().await;
    let other = db.second_engine().await;
    db.engine.put_workflow(&tenant(), &yaml(&flow("busy"))).await.unwrap();
    let mut feed = Box::pin(db.engine.watch_events(&tenant(), Some("busy".into()), FeedStart::After(0)).await.unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(e) = feed.next().await {
            if tx.send(e.unwrap()).is_err() {
                return;
            }
        }
    });
    let writers: Vec<_> = [db.engine.clone(), other, db.engine.clone(), db.engine.clone()]
        .into_iter()
        .map(|e| {
            tokio::spawn(async move {
                for _ in 0..15 {
                    trigger(&e, "busy").await;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let all = stored(&db).await;
    assert!(all.len() >= 60, "{} events", all.len());
    let mut got = Vec::new();
    while got.len() < all.len() {
        let e = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.expect("every event arrives");
        got.push(e.expect("the feed goes on"));
    }
    assert!(ids(&got).windows(2).all(|w| w[0] < w[1]), "increasing ids, so no duplicates");
    assert_eq!(got, all, "exactly the stored log");
    reader.abort();
    db.finish().await;
}
