//! The dashboard in a real headless Chromium against `braid server` (PostgreSQL, Redis) and an example worker: runs appear and move live, cancel and redrive from the page, every page rendered and photographed, a 200-task run's time to first render.

use braid_e2e::browser::Browser;
use braid_e2e::cluster::Cluster;
use braid_proto::v1 as pb;
use serde_json::{Value, json};
use std::path::PathBuf;

/// a, then b and c, then d: each task sleeps the input's `ms`.
const ETL: &str = "name: etl\ntasks:\n  - {name: extract, task_type: sleep}\n  - {name: clean, task_type: sleep, depends_on: [extract]}\n  - {name: enrich, task_type: sleep, depends_on: [extract]}\n  - {name: load, task_type: sleep, depends_on: [clean, enrich]}\n";
/// `check` fails its first attempt (input `{"times": 1}`) and has one attempt: it is dead-lettered.
const FRAGILE: &str = "name: fragile\ntasks:\n  - {name: check, task_type: fail, retry: {max_attempts: 1}}\n  - {name: publish, task_type: echo, depends_on: [check]}\n";

/// 200 tasks: one root, a fan-out of 168 (sleeping the input's `ms`), ten merges, ten checks,
/// ten publishes, one summary.
fn big_workflow() -> String {
    let mut y = String::from("name: big\ntasks:\n  - {name: root, task_type: echo}\n");
    for i in 0..168 {
        y += &format!("  - {{name: shard-{i:03}, task_type: sleep, depends_on: [root]}}\n");
    }
    for g in 0..10 {
        let deps: Vec<String> = (g * 17..((g + 1) * 17).min(168)).map(|i| format!("shard-{i:03}")).collect();
        y += &format!("  - {{name: merge-{g}, task_type: echo, depends_on: [{}]}}\n", deps.join(", "));
        y += &format!("  - {{name: check-{g}, task_type: echo, depends_on: [merge-{g}]}}\n");
        y += &format!("  - {{name: publish-{g}, task_type: echo, depends_on: [check-{g}]}}\n");
    }
    let all: Vec<String> = (0..10).map(|g| format!("publish-{g}")).collect();
    y += &format!("  - {{name: summary, task_type: echo, depends_on: [{}]}}\n", all.join(", "));
    y
}

/// Screenshots and timings go here (under the build's temporary folder, never the repo).
fn out_dir() -> PathBuf {
    std::env::var_os("BRAID_TEST_OUTPUT")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from)
        .join("dashboard")
}

/// Records every `data-state` each graph node takes from now on (attribute changes, not reloads).
const OBSERVE_NODES: &str = r"
window.__seen = {};
for (const g of document.querySelectorAll('svg[data-testid=dag] g[data-task]')) {
  (window.__seen[g.dataset.task] ||= []).push(g.dataset.state);
}
new MutationObserver((ms) => {
  for (const m of ms) {
    const t = m.target;
    if (t.dataset && t.dataset.task) (window.__seen[t.dataset.task] ||= []).push(t.dataset.state);
  }
}).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['data-state'] });
return true;";

/// Records the longest gap beyond 50 ms between ticks of a 50 ms timer: how long the page froze.
const WATCH_STALLS: &str = r"
window.__stall = 0;
let last = performance.now();
setInterval(() => {
  const now = performance.now();
  window.__stall = Math.max(window.__stall, Math.round(now - last - 50));
  last = now;
}, 50);
return true;";

async fn grpc_run_state(c: &Cluster, id: &str) -> pb::RunState {
    c.get(id).await.state()
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_shows_runs_live_and_acts_on_them() {
    let c = Cluster::start().await;
    let _w = c.worker("ui-worker", 8, "sleep,echo,fail", &[]);
    c.apply(ETL);
    c.apply(FRAGILE);
    c.apply(&big_workflow());
    let base = format!("http://{}", c.server.http);
    let b = Browser::start(&out_dir(), 1280, 900).await;
    let mut shots = Vec::new();

    // The runs page; a run triggered through the API appears without a reload.
    b.goto(&format!("{base}/#/runs")).await;
    b.wait_page("runs").await;
    b.js("window.__sameDocument = true; return true;", vec![]).await;
    let run = c.trigger("etl", json!({"ms": 1200})).await;
    let row = format!("tr[data-run-id=\"{run}\"]");
    b.wait_for(&row).await;
    b.wait_for(&format!("{row} [data-state=running]")).await;
    shots.push(b.screenshot("runs").await);

    // Open it: the graph shows its four tasks, which turn green as they finish, live.
    b.click(&format!("{row} a[href=\"#/runs/{run}\"]")).await;
    b.wait_page("run").await;
    b.wait_count("svg[data-testid=dag] g[data-task]", 4).await;
    b.js(OBSERVE_NODES, vec![]).await;
    b.wait_count("svg[data-testid=dag] g[data-task][data-state=succeeded]", 4).await;
    b.wait_for("[data-testid=run-state][data-state=succeeded]").await;
    b.wait_count("[data-task-row][data-state=succeeded]", 4).await;
    let seen = b.js("return window.__seen;", vec![]).await;
    let load: Vec<&str> = seen["load"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(
        load.contains(&"leased") && load.last() == Some(&"succeeded"),
        "task load should be seen running, then succeeded, in place: {seen}"
    );
    assert_eq!(b.js("return window.__sameDocument === true;", vec![]).await, json!(true), "the page was reloaded");
    assert!(b.count("[data-testid=timeline] [data-sequence]").await >= 10, "the timeline lists the run's events");
    assert_eq!(grpc_run_state(&c, &run).await, pb::RunState::Succeeded);
    b.click("svg[data-testid=dag] g[data-task=load]").await;
    b.click("details[data-k=input] > summary").await;
    b.wait_js(
        "the selected task's input, with its dependencies' outputs",
        "const p = document.querySelector('.input-body pre'); return p && p.textContent.includes('slept_ms');",
        vec![],
    )
    .await;
    shots.push(b.screenshot("run").await);

    // Cancel a second run from its page, after confirming.
    let long = c.trigger("etl", json!({"ms": 60_000})).await;
    b.js("location.hash = arguments[0]; return true;", vec![json!(format!("#/runs/{long}"))]).await;
    b.wait_page("run").await;
    b.wait_for("g[data-task=extract][data-state=leased]").await;
    b.wait_for("[data-testid=why] [data-blocker-task=load]").await;
    b.click("button[data-action=cancel]").await;
    b.wait_for("dialog[open] button[data-action=confirm]").await;
    shots.push(b.screenshot("run-cancel-confirm").await);
    b.click("dialog[open] button[data-action=confirm]").await;
    b.wait_for("[data-testid=run-state][data-state=cancelled]").await;
    assert_eq!(grpc_run_state(&c, &long).await, pb::RunState::Cancelled);
    b.wait_for("g[data-task=extract][data-state=cancelled]").await;

    // A task runs out of attempts; redrive its dead letter from the failures page; the run succeeds.
    let fragile = c.trigger("fragile", json!({"times": 1})).await;
    assert_eq!(c.finish(&fragile).await.state(), pb::RunState::Failed);
    let mut admin = pb::admin_service_client::AdminServiceClient::new(c.server.channel().await);
    let dead = admin.list_dead_letters(pb::ListDeadLettersRequest::default()).await.unwrap().into_inner().dead_letters;
    assert_eq!(dead.len(), 1);
    b.click("nav a[href=\"#/dead-letters\"]").await;
    b.wait_page("dead-letters").await;
    b.wait_for("[data-group-key]").await;
    b.click(&format!("input[type=checkbox][data-select=\"{}\"]", dead[0].id)).await;
    shots.push(b.screenshot("dead-letters").await);
    b.click("button[data-action=redrive-selected]").await;
    b.click("dialog[open] button[data-action=confirm]").await;
    b.wait_for("[data-testid=flash]").await;
    assert_eq!(c.finish(&fragile).await.state(), pb::RunState::Succeeded);
    b.js("location.hash = arguments[0]; return true;", vec![json!(format!("#/runs/{fragile}"))]).await;
    b.wait_page("run").await;
    b.wait_for("[data-testid=run-state][data-state=succeeded]").await;
    b.wait_for("g[data-task=check][data-state=succeeded]").await;

    // Workers, queues and schedules (pause one from the page).
    b.click("nav a[href=\"#/workers\"]").await;
    b.wait_page("workers").await;
    b.wait_for("tr[data-worker-id]").await;
    assert!(b.text_of("tr[data-worker-id]").await.unwrap_or_default().contains("ui-worker"));
    shots.push(b.screenshot("workers").await);
    b.click("nav a[href=\"#/queues\"]").await;
    b.wait_page("queues").await;
    b.wait_for("tr[data-task-type=sleep]").await;
    shots.push(b.screenshot("queues").await);
    let mut schedules = pb::schedule_service_client::ScheduleServiceClient::new(c.server.channel().await);
    let schedule = pb::Schedule {
        name: "hourly-etl".into(),
        workflow_name: "etl".into(),
        cron: "0 * * * *".into(),
        input_json: json!({"ms": 10}).to_string(),
        ..Default::default()
    };
    let req = pb::CreateScheduleRequest { schedule: Some(schedule) };
    let created = schedules.create_schedule(req).await.unwrap().into_inner().schedule.unwrap();
    b.click("nav a[href=\"#/schedules\"]").await;
    b.wait_page("schedules").await;
    let srow = format!("tr[data-schedule-id=\"{}\"]", created.id);
    shots.push(b.screenshot("schedules").await);
    b.click(&format!("{srow} button[data-action=pause]")).await;
    b.wait_for(&format!("{srow} button[data-action=resume]")).await;
    let got = schedules.get_schedule(pb::GetScheduleRequest { id: created.id.clone() }).await.unwrap().into_inner();
    assert!(got.schedule.unwrap().paused, "pausing from the page paused the schedule");

    // A 200-task run, opened by a fresh page load while it runs: all of it is drawn, then every
    // node turns green live. Recorded (not asserted): the time to first render, and the longest
    // stall of the page's event loop while the updates arrive.
    let big = c.trigger("big", json!({"ms": 150})).await;
    b.goto("about:blank").await;
    b.goto(&format!("{base}/#/runs/{big}")).await;
    b.wait_page("run").await;
    b.wait_count("svg[data-testid=dag] g[data-task]", 200).await;
    b.wait_count("[data-task-row]", 200).await;
    let timings = b.wait_js("the first-render timings", "return window.__braidTimings || null;", vec![]).await;
    assert_eq!(timings["runTasks"], 200);
    b.js(WATCH_STALLS, vec![]).await;
    shots.push(b.screenshot("run-200-tasks").await);
    b.wait_count("svg[data-testid=dag] g[data-task][data-state=succeeded]", 200).await;
    b.wait_for("[data-testid=run-state][data-state=succeeded]").await;
    let stall = b.js("return window.__stall;", vec![]).await;
    let updates = b.js("return window.__braidTimings.maxUpdateMs;", vec![]).await;
    let figures = json!({"first_render": timings, "longest_update_ms": updates, "longest_stall_ms": stall});
    println!("200-task run: {figures}");
    std::fs::write(b.out_dir.join("timings.json"), figures.to_string()).unwrap();

    // A narrow screen.
    b.resize(420, 900).await;
    b.goto(&format!("{base}/#/runs")).await;
    b.wait_page("runs").await;
    shots.push(b.screenshot("runs-narrow").await);
    b.js("location.hash = arguments[0]; return true;", vec![json!(format!("#/runs/{run}"))]).await;
    b.wait_page("run").await;
    shots.push(b.screenshot("run-narrow").await);

    for s in &shots {
        assert!(std::fs::metadata(s).unwrap().len() > 1000, "{} is not a picture", s.display());
    }
    println!("screenshots in {}", b.out_dir.display());
    b.close().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_auth_on_the_dashboard_asks_for_a_token_and_keeps_it_in_a_cookie() {
    let c = Cluster::start_secure().await;
    let reader = c.token("acme", "read-only");
    let worker = c.token("acme", "worker");
    let base = format!("http://{}", c.server.http);
    let b = Browser::start(&out_dir(), 1280, 900).await;
    b.goto(&format!("{base}/#/runs")).await;
    b.wait_page("sign-in").await;
    shots_of(&b, "sign-in").await;
    // A worker token may not read: refused with the reason.
    b.js("document.querySelector('#token').value = arguments[0]; return true;", vec![json!(worker)]).await;
    b.click("button[data-action=sign-in]").await;
    b.wait_js(
        "the refusal of a worker token",
        "const e = document.querySelector('[data-testid=sign-in-error]'); return e && e.textContent.includes('may not');",
        vec![],
    )
    .await;
    b.js("document.querySelector('#token').value = arguments[0]; return true;", vec![json!(reader)]).await;
    b.click("button[data-action=sign-in]").await;
    b.wait_page("runs").await;
    assert!(b.text_of("#whoami").await.unwrap_or_default().contains("acme · read-only"));
    // The cookie is HttpOnly: the page's scripts cannot read the token.
    assert_eq!(b.js("return document.cookie;", vec![]).await, json!(""));
    // A new page load stays signed in; signing out asks again.
    b.goto(&format!("{base}/#/workers")).await;
    b.wait_page("workers").await;
    b.click("button[data-action=sign-out]").await;
    b.wait_page("sign-in").await;
    b.close().await;
    c.stop().await;
}

async fn shots_of(b: &Browser, name: &str) {
    let path = b.screenshot(name).await;
    assert!(std::fs::metadata(&path).unwrap().len() > 1000, "{} is not a picture", path.display());
}
