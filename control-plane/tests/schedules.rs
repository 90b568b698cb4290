//! Cron schedules driven by a manual clock on SQLite and PostgreSQL: DST, catch-up, overlap, exactly once, backfill.

mod common;

use braid_control_plane::domain::flow::{CatchupPolicy, OverlapPolicy, Priority};
use braid_control_plane::domain::records::{Run, RunFilter, Tenant};
use braid_control_plane::domain::schedule::ScheduleSpec;
use braid_control_plane::domain::state::{RunState, TriggerSource};
use braid_control_plane::engine::{Clock, Engine, EngineError};
use braid_control_plane::queue::InProcessQueue;
use braid_control_plane::store::Store;
use chrono::{DateTime, Duration, Utc};
use common::{TestDb, tenant, yaml};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;
use uuid::Uuid;

/// A clock that moves only when told.
#[derive(Debug)]
struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    fn at(t: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self(Mutex::new(t)))
    }
    fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap() = t;
    }
    fn advance(&self, d: Duration) {
        *self.0.lock().unwrap() += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("an RFC 3339 instant")
}

fn engine(store: &Store, clock: &Arc<ManualClock>, settings: &TestDb) -> Engine {
    Engine::new(store.clone(), clock.clone(), Arc::new(InProcessQueue::new()), *settings.engine.settings())
}

fn spec(name: &str, cron: &str, tz: &str, overlap: OverlapPolicy) -> ScheduleSpec {
    ScheduleSpec {
        name: name.into(),
        workflow_name: "nightly".into(),
        cron: cron.into(),
        timezone: tz.into(),
        input_json: r#"{"from": "cron"}"#.into(),
        overlap,
        paused: false,
        start_at: None,
        end_at: None,
        catchup_window: None,
        catchup: CatchupPolicy::All,
        priority: Priority::Low,
    }
}

async fn setup(e: &Engine) {
    e.put_workflow(&tenant(), &yaml("name: nightly\ntasks:\n  - {name: a, task_type: t}\n")).await.unwrap();
}

/// The runs of schedule `id`, oldest tick first.
async fn runs_of(e: &Engine, id: Uuid) -> Vec<Run> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = e.list_runs(&tenant(), &RunFilter::default(), 500, &token).await.unwrap();
        out.extend(page.items.into_iter().filter(|r| r.schedule.is_some_and(|s| s.schedule_id == id)));
        match page.next {
            Some(t) => token = t,
            None => break,
        }
    }
    out.sort_by_key(|r| r.schedule.map(|s| s.nominal));
    out
}

async fn ticks_of(e: &Engine, id: Uuid) -> Vec<DateTime<Utc>> {
    runs_of(e, id).await.iter().filter_map(|r| r.schedule.map(|s| s.nominal)).collect()
}

async fn validation(db: &TestDb) {
    let e = &db.engine;
    setup(e).await;
    let bad = |s: ScheduleSpec| async move { e.create_schedule(&tenant(), &s).await.unwrap_err() };
    let field = |err: EngineError| match err {
        EngineError::InvalidArgument { field, reason } => (field, reason),
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    let (f, r) = field(bad(spec("a", "61 * * * *", "", OverlapPolicy::Skip)).await);
    assert_eq!(f, "schedule.cron");
    assert!(r.starts_with("minute field"), "{r}");
    let (f, _) = field(bad(spec("a", "* * * *", "", OverlapPolicy::Skip)).await);
    assert_eq!(f, "schedule.cron");
    let (f, _) = field(bad(spec("a", "0 * * * *", "Nowhere/City", OverlapPolicy::Skip)).await);
    assert_eq!(f, "schedule.timezone");
    // A workflow the tenant does not have is NOT_FOUND, like any id it does not have.
    let missing =
        bad(ScheduleSpec { workflow_name: "missing".into(), ..spec("a", "0 * * * *", "", OverlapPolicy::Skip) }).await;
    assert!(
        matches!(&missing, EngineError::NotFound(m) if m.starts_with("schedule.workflow_name: no workflow")),
        "{missing:?}"
    );
    let (f, _) = field(
        bad(ScheduleSpec { input_json: "{nope".into(), ..spec("a", "0 * * * *", "", OverlapPolicy::Skip) }).await,
    );
    assert_eq!(f, "schedule.input_json");
    let t = utc("2026-01-01T00:00:00Z");
    let (f, _) = field(
        bad(ScheduleSpec { start_at: Some(t), end_at: Some(t), ..spec("a", "0 * * * *", "", OverlapPolicy::Skip) })
            .await,
    );
    assert_eq!(f, "schedule.end_at");
    let (f, _) = field(
        bad(ScheduleSpec {
            catchup_window: Some(StdDuration::ZERO),
            ..spec("a", "0 * * * *", "", OverlapPolicy::Skip)
        })
        .await,
    );
    assert_eq!(f, "schedule.catchup_window");
    // CRUD round trip, names unique, pages.
    let a = e.create_schedule(&tenant(), &spec("a", "0 * * * *", "", OverlapPolicy::Skip)).await.unwrap();
    assert_eq!(a.next_fire_times.len(), 5);
    assert!(matches!(
        e.create_schedule(&tenant(), &spec("a", "0 * * * *", "", OverlapPolicy::Skip)).await,
        Err(EngineError::AlreadyExists(_))
    ));
    e.create_schedule(&tenant(), &spec("b", "0 * * * *", "", OverlapPolicy::Skip)).await.unwrap();
    e.create_schedule(&tenant(), &spec("c", "0 * * * *", "", OverlapPolicy::Skip)).await.unwrap();
    let p1 = e.list_schedules(&tenant(), None, 2, "").await.unwrap();
    assert_eq!(p1.items.iter().map(|v| v.schedule.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    let p2 = e.list_schedules(&tenant(), None, 2, p1.next.as_deref().unwrap()).await.unwrap();
    assert_eq!(p2.items.iter().map(|v| v.schedule.name.as_str()).collect::<Vec<_>>(), ["c"]);
    assert!(p2.next.is_none());
    let id = a.schedule.id;
    let paused = e.set_schedule_paused(&tenant(), id, true).await.unwrap();
    assert!(paused.schedule.paused && paused.next_fire_times.is_empty());
    let updated = e
        .update_schedule(
            &tenant(),
            id,
            &ScheduleSpec { cron: "*/5 * * * *".into(), ..spec("a2", "", "", OverlapPolicy::AllowAll) },
        )
        .await
        .unwrap();
    assert_eq!((updated.schedule.name.as_str(), updated.schedule.cron.as_str()), ("a2", "*/5 * * * *"));
    assert_eq!(updated.schedule.overlap, OverlapPolicy::AllowAll);
    e.delete_schedule(&tenant(), id).await.unwrap();
    assert!(matches!(e.get_schedule(&tenant(), id).await, Err(EngineError::NotFound(_))));
    assert!(matches!(
        e.get_schedule(&Tenant("other".into()), p2.items[0].schedule.id).await,
        Err(EngineError::NotFound(_))
    ));
}
on_both_backends!(schedules_are_validated_and_listed, validation);

/// Drives passes every `step` from `from` to `to`.
async fn drive(e: &Engine, clock: &ManualClock, from: DateTime<Utc>, to: DateTime<Utc>, step: Duration) {
    let mut t = from;
    while t <= to {
        clock.set(t);
        e.fire_due_once().await.unwrap();
        t += step;
    }
}

async fn dst(db: &TestDb) {
    let clock = ManualClock::at(utc("2026-03-07T12:00:00Z"));
    let e = engine(&db.store, &clock, db);
    setup(&e).await;
    let spring = e
        .create_schedule(&tenant(), &spec("spring", "30 2 * * *", "America/New_York", OverlapPolicy::AllowAll))
        .await
        .unwrap();
    assert_eq!(spring.next_fire_times[0], utc("2026-03-08T07:00:00Z"), "02:30 does not exist on 2026-03-08: 03:00 EDT");
    assert_eq!(spring.next_fire_times[1], utc("2026-03-09T06:30:00Z"));
    drive(&e, &clock, utc("2026-03-07T12:00:00Z"), utc("2026-03-10T12:00:00Z"), Duration::minutes(5)).await;
    assert_eq!(
        ticks_of(&e, spring.schedule.id).await,
        [utc("2026-03-08T07:00:00Z"), utc("2026-03-09T06:30:00Z"), utc("2026-03-10T06:30:00Z")]
    );
    clock.set(utc("2026-10-31T12:00:00Z"));
    let fall = e
        .create_schedule(&tenant(), &spec("fall", "30 1 * * *", "America/New_York", OverlapPolicy::AllowAll))
        .await
        .unwrap();
    drive(&e, &clock, utc("2026-10-31T12:00:00Z"), utc("2026-11-02T12:00:00Z"), Duration::minutes(5)).await;
    assert_eq!(
        ticks_of(&e, fall.schedule.id).await,
        [utc("2026-11-01T05:30:00Z"), utc("2026-11-02T06:30:00Z")],
        "01:30 happens twice on 2026-11-01: it fires once, at 01:30 EDT"
    );
    let run = &runs_of(&e, fall.schedule.id).await[0];
    assert_eq!(run.trigger_source, TriggerSource::Schedule);
    assert_eq!(run.priority, Priority::Low);
    assert_eq!(run.input, r#"{"from": "cron"}"#);
}
on_both_backends!(new_york_ticks_cross_both_dst_changes, dst);

async fn catchup(db: &TestDb) {
    let t0 = utc("2026-05-01T00:00:00Z");
    let clock = ManualClock::at(t0);
    let e = engine(&db.store, &clock, db);
    setup(&e).await;
    let window = Some(StdDuration::from_secs(600));
    let all = ScheduleSpec { catchup_window: window, ..spec("all", "* * * * *", "", OverlapPolicy::AllowAll) };
    let latest =
        ScheduleSpec { catchup: CatchupPolicy::Latest, ..spec("latest", "* * * * *", "", OverlapPolicy::AllowAll) };
    let latest = ScheduleSpec { catchup_window: window, ..latest };
    let all = e.create_schedule(&tenant(), &all).await.unwrap().schedule.id;
    let latest = e.create_schedule(&tenant(), &latest).await.unwrap().schedule.id;
    // Down for 30 minutes: ticks older than the 10-minute window are skipped.
    clock.set(t0 + Duration::minutes(30));
    let report = e.fire_due_once().await.unwrap();
    assert_eq!(report.fired, 11 + 1);
    assert_eq!(report.missed, 19 + 29);
    let expect: Vec<_> = (20..=30).map(|m| t0 + Duration::minutes(m)).collect();
    assert_eq!(ticks_of(&e, all).await, expect);
    assert_eq!(ticks_of(&e, latest).await, [t0 + Duration::minutes(30)]);
    // Nothing more fires until the next tick; then one each.
    assert_eq!(e.fire_due_once().await.unwrap().fired, 0);
    clock.advance(Duration::seconds(60));
    assert_eq!(e.fire_due_once().await.unwrap().fired, 2);
    let s = e.get_schedule(&tenant(), all).await.unwrap();
    assert_eq!(s.schedule.last_tick, Some(t0 + Duration::minutes(31)));
    // Paused: nothing fires, and the pause is not caught up on resume.
    e.set_schedule_paused(&tenant(), all, true).await.unwrap();
    clock.advance(Duration::minutes(5));
    e.fire_due_once().await.unwrap();
    e.set_schedule_paused(&tenant(), all, false).await.unwrap();
    e.fire_due_once().await.unwrap();
    assert_eq!(ticks_of(&e, all).await.len(), 12);
}
on_both_backends!(catch_up_fires_within_the_window_all_or_latest, catchup);

/// `latest` collapses ticks missed while nobody fired them, not those of a pass that ran a little late.
async fn latest_keeps_on_time_ticks(db: &TestDb) {
    let t0 = utc("2026-05-01T00:00:00Z");
    let clock = ManualClock::at(t0);
    let e = engine(&db.store, &clock, db);
    setup(&e).await;
    let spec =
        ScheduleSpec { catchup: CatchupPolicy::Latest, ..spec("sec", "* * * * * *", "", OverlapPolicy::AllowAll) };
    let id = e.create_schedule(&tenant(), &spec).await.unwrap().schedule.id;
    clock.set(t0 + Duration::seconds(3));
    let report = e.fire_due_once().await.unwrap();
    assert_eq!((report.fired, report.missed), (3, 0), "three on-time ticks of a late pass all fire");
    // Down for a minute: of ticks 4..=60, those older than 5 s are caught up as the newest of
    // them only if no on-time tick replaces it; here six on-time ticks fire.
    clock.set(t0 + Duration::seconds(60));
    let report = e.fire_due_once().await.unwrap();
    assert_eq!((report.fired, report.missed), (6, 51));
    let ticks = ticks_of(&e, id).await;
    assert_eq!(ticks.len(), 9);
    assert_eq!(ticks[3], t0 + Duration::seconds(55));
}
on_both_backends!(latest_keeps_on_time_ticks_of_a_late_pass, latest_keeps_on_time_ticks);

/// Creates a per-minute schedule with `overlap` at t0 and runs passes at t0+1m, +2m, +3m.
async fn overlap_case(db: &TestDb, overlap: OverlapPolicy) -> (Engine, Uuid, Arc<ManualClock>) {
    let t0 = utc("2026-05-01T00:00:00Z");
    let clock = ManualClock::at(t0);
    let e = engine(&db.store, &clock, db);
    setup(&e).await;
    let id = e.create_schedule(&tenant(), &spec("s", "* * * * *", "", overlap)).await.unwrap().schedule.id;
    for m in 1..=3 {
        clock.set(t0 + Duration::minutes(m));
        e.fire_due_once().await.unwrap();
    }
    (e, id, clock)
}

async fn states(e: &Engine, id: Uuid) -> Vec<RunState> {
    runs_of(e, id).await.iter().map(|r| r.state).collect()
}

async fn overlap_skip(db: &TestDb) {
    let (e, id, clock) = overlap_case(db, OverlapPolicy::Skip).await;
    assert_eq!(states(&e, id).await, [RunState::Running], "ticks 2 and 3 skipped: run 1 still going");
    let first = runs_of(&e, id).await[0].id;
    e.cancel_run(&tenant(), first, "done").await.unwrap();
    clock.advance(Duration::minutes(1));
    e.fire_due_once().await.unwrap();
    assert_eq!(states(&e, id).await, [RunState::Cancelled, RunState::Running]);
    assert_eq!(e.get_schedule(&tenant(), id).await.unwrap().schedule.last_tick, Some(clock.now()));
}
on_both_backends!(overlap_skip_skips_while_a_run_goes, overlap_skip);

async fn overlap_allow_all(db: &TestDb) {
    let (e, id, _) = overlap_case(db, OverlapPolicy::AllowAll).await;
    assert_eq!(states(&e, id).await, [RunState::Running; 3]);
}
on_both_backends!(overlap_allow_all_overlaps, overlap_allow_all);

async fn overlap_buffer_one(db: &TestDb) {
    let (e, id, _) = overlap_case(db, OverlapPolicy::BufferOne).await;
    assert_eq!(states(&e, id).await, [RunState::Running, RunState::Queued], "one buffered, the third tick skipped");
    let runs = runs_of(&e, id).await;
    e.cancel_run(&tenant(), runs[0].id, "done").await.unwrap();
    let second = e.get_run(&tenant(), runs[1].id).await.unwrap();
    assert_eq!(second.run.state, RunState::Running, "the buffered run starts when the previous one ends");
}
on_both_backends!(overlap_buffer_one_buffers_one, overlap_buffer_one);

async fn overlap_cancel_other(db: &TestDb) {
    let (e, id, _) = overlap_case(db, OverlapPolicy::CancelOther).await;
    assert_eq!(states(&e, id).await, [RunState::Cancelled, RunState::Cancelled, RunState::Running]);
}
on_both_backends!(overlap_cancel_other_cancels_the_previous_run, overlap_cancel_other);

async fn backfill(db: &TestDb) {
    let t0 = utc("2026-05-01T00:00:00Z");
    let clock = ManualClock::at(t0);
    let e = engine(&db.store, &clock, db);
    setup(&e).await;
    let id = e
        .create_schedule(&tenant(), &spec("s", "*/10 * * * *", "", OverlapPolicy::AllowAll))
        .await
        .unwrap()
        .schedule
        .id;
    clock.set(t0 + Duration::minutes(30));
    e.fire_due_once().await.unwrap(); // fires 00:20 and 00:30 (00:10 is outside the 10-minute window)
    let out = e
        .backfill_schedule(&tenant(), id, t0 - Duration::hours(1), t0 + Duration::minutes(30), OverlapPolicy::AllowAll)
        .await
        .unwrap();
    assert_eq!(out.ticks, 9, "23:00 … 00:20, end excluded");
    assert_eq!(out.created, 8, "00:20 already had its run");
    let again = e
        .backfill_schedule(&tenant(), id, t0 - Duration::hours(1), t0 + Duration::minutes(30), OverlapPolicy::AllowAll)
        .await
        .unwrap();
    assert_eq!((again.ticks, again.created), (9, 0));
    assert_eq!(ticks_of(&e, id).await.len(), 10);
    assert!(matches!(
        e.backfill_schedule(&tenant(), id, t0, t0 + Duration::hours(2), OverlapPolicy::AllowAll).await,
        Err(EngineError::InvalidArgument { .. })
    ));
}
on_both_backends!(backfill_fires_each_past_tick_once, backfill);

/// Two control planes (separate pools) on one PostgreSQL database fire the same per-second
/// schedule at the same instants, concurrently: one run per tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_control_planes_fire_each_tick_once() {
    let (bootstrap, url) = braid_migrations::testing::fresh_postgres().await;
    let a_store = Store::connect(&url, 8).await.unwrap();
    a_store.migrate().await.unwrap();
    let b_store = Store::connect(&url, 8).await.unwrap();
    let t0 = utc("2026-05-01T00:00:00Z");
    let (ca, cb) = (ManualClock::at(t0), ManualClock::at(t0));
    let settings = Default::default();
    let a = Engine::new(a_store.clone(), ca.clone(), Arc::new(InProcessQueue::new()), settings);
    let b = Engine::new(b_store.clone(), cb.clone(), Arc::new(InProcessQueue::new()), settings);
    setup(&a).await;
    let id =
        a.create_schedule(&tenant(), &spec("s", "* * * * * *", "", OverlapPolicy::AllowAll)).await.unwrap().schedule.id;
    let cancel = a
        .create_schedule(&tenant(), &spec("c", "* * * * * *", "", OverlapPolicy::CancelOther))
        .await
        .unwrap()
        .schedule
        .id;
    for step in 1..=10 {
        let t = t0 + Duration::seconds(3 * step);
        ca.set(t);
        cb.set(t);
        let (ra, rb) = tokio::join!(a.fire_due_once(), b.fire_due_once());
        ra.unwrap();
        rb.unwrap();
    }
    let ticks = ticks_of(&a, id).await;
    let expect: Vec<_> = (1..=30).map(|s| t0 + Duration::seconds(s)).collect();
    assert_eq!(ticks, expect, "every tick once, none twice");
    let runs = runs_of(&a, cancel).await;
    assert_eq!(runs.len(), 30);
    let running: Vec<_> = runs.iter().filter(|r| r.state == RunState::Running).collect();
    assert_eq!(running.len(), 1, "cancel_other leaves only the newest running");
    assert_eq!(running[0].schedule.unwrap().nominal, t0 + Duration::seconds(30));
    a_store.close().await.unwrap();
    b_store.close().await.unwrap();
    braid_migrations::testing::drop_postgres(bootstrap, &url).await;
}

/// The leader lock: while one control plane holds it, another's pass does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_at_a_time() {
    let db = TestDb::postgres().await;
    let other = db.second_engine().await;
    let txn = db.store.begin().await.unwrap();
    let held = braid_control_plane::store::leader::try_lock(
        &txn,
        db.store.backend(),
        braid_control_plane::engine::scheduler::SCHEDULER_LOCK,
    )
    .await
    .unwrap();
    assert!(held);
    assert!(other.scheduler_pass().await.unwrap().is_none(), "not the leader while the lock is held");
    txn.rollback().await.unwrap();
    assert!(other.scheduler_pass().await.unwrap().is_some(), "leads once the holder is gone");
    db.finish().await;
}
