// pages/run.js: one run — header and actions, DAG, task table and panel, "why isn't this running?", live timeline.
import { get, post, subscribe, throttle } from "../api.js";
import {
  badge, blobView, clearError, confirmDialog, el, emptyState, errorView, flash, liveSpan, placeholderRow,
  progressBar, relTime, setBadge, setChildren, setLive, showError, syncRows, table, TERMINAL_RUN,
} from "../components.js";
import { clock, compactJson, dateTime, shortId } from "../format.js";
import { createGraph } from "../graph.js";

const TASK_EVENT_STATE = {
  task_leased: "leased", task_succeeded: "succeeded", task_failed: "failed", task_ready: "ready",
  task_retry_scheduled: "ready", task_redriven: "ready", task_pending: "pending",
  task_skipped: "skipped", task_cancelled: "cancelled",
};
const RUN_EVENT_STATE = {
  run_started: "running", run_resumed: "running", run_succeeded: "succeeded",
  run_failed: "failed", run_cancelled: "cancelled",
};
const BLOCKER_ORDER = { no_worker: 0, run_queued: 1, backoff: 2, workers_busy: 3, dispatching: 4, run_finished: 5, dependencies: 6 };
const WHY_NAMES = 12; // task names listed per reason before "and N more"

export function mount(main, { params, query }, ctx) {
  const runId = params[0];
  let detail = null;
  let runState = null;
  let tasks = new Map();
  let lastSeq = 0;
  let es = null;
  let selected = query.task || null;
  let panelSig = "";
  let whySig = "";
  // Reasons whose whole task list is shown ("and N more" clicked), by kind and message.
  const whyOpen = new Set();
  // Task inputs as shown, fetched when first opened, by "name#attempt" (a redrive changes them).
  const inputs = new Map();
  let firstRender = true;
  const seen = new Set();

  // --- skeleton (fixed sizes so live updates never shift the layout) ---
  const stateBadge = badge("queued", { dataset: { testid: "run-state" } });
  stateBadge.dataset.state = "";
  stateBadge.replaceChildren(el("span.muted", "loading…"));
  const title = el("h1.run-title", el("span.muted", "Run "), el("span.mono", shortId(runId)));
  const actions = el("div.actions");
  const meta = el("dl.meta");
  const reasonBox = el("div.run-reason", { hidden: true });
  const progress = el("div.run-progress");
  const blobs = el("div.run-blobs");
  const header = el("section.card.run-head",
    el("div.run-head-top", el("div.run-title-wrap", title, stateBadge), actions),
    reasonBox, meta, progress, blobs);

  const graphHost = el("div.graph-host", { tabindex: "-1" });
  const graph = createGraph(graphHost, { onSelect: (n) => select(n, { fromGraph: true }) });
  const zoomBar = el("div.toolbar",
    el("button.btn.icon", { type: "button", title: "Zoom out", "aria-label": "Zoom out", dataset: { action: "zoom-out" }, on: { click: () => graph.zoomOut() } }, "−"),
    el("button.btn.icon", { type: "button", title: "Zoom in", "aria-label": "Zoom in", dataset: { action: "zoom-in" }, on: { click: () => graph.zoomIn() } }, "+"),
    el("button.btn", { type: "button", dataset: { action: "zoom-fit" }, on: { click: () => graph.fit() } }, "Fit"),
    el("button.btn", { type: "button", dataset: { action: "zoom-reset" }, on: { click: () => graph.actual() } }, "1:1"));
  const legend = el("div.legend", ["pending", "ready", "leased", "succeeded", "failed", "skipped", "cancelled"].map((s) => badge(s)));
  const graphCard = el("section.card.graph-card", { "aria-label": "Task graph" },
    el("div.card-head", el("h2", "Graph"), el("span.muted.small", "click a task for details"), el("span.spacer"), zoomBar), graphHost, legend);

  const panel = el("div.task-panel", emptyState("No task selected.", "Click a node in the graph or a row in the table."));
  const panelCard = el("section.card.panel-card", { "aria-label": "Selected task" }, el("div.card-head", el("h2", "Task")), panel);

  const { wrap: taskWrap, tbody: taskBody } = table(["State", "Task", "Type", "Attempt:num", "Duration:num", "Waiting on"], { caption: "Tasks", cls: "tasks-table" });
  placeholderRow(taskBody, 6, el("span.muted", "Loading tasks…"), "loading");
  const taskCount = el("span.muted.num");
  const tasksCard = el("section.card.tasks-card", { "aria-label": "Tasks" }, el("div.card-head", el("h2", "Tasks"), taskCount), el("div.scroll-y", taskWrap));
  taskBody.addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-task-row]");
    if (tr && !e.target.closest("a")) select(tr.dataset.taskRow, { scroll: true });
  });

  const whyList = el("ul.why-list");
  const whyCount = el("span.muted.num");
  const whyCard = el("section.card.why-card", { dataset: { testid: "why" }, "aria-label": "Why isn't this running?" },
    el("div.card-head", el("h2", "Why isn’t this running?"), whyCount), el("div.scroll-y", whyList));

  const timeline = el("ol.timeline", { dataset: { testid: "timeline" } });
  const timelineScroll = el("div.scroll-y.timeline-scroll", timeline);
  const tlCount = el("span.muted.num");
  const timelineCard = el("section.card.timeline-card", { "aria-label": "Timeline" },
    el("div.card-head", el("h2", "Timeline"), tlCount), timelineScroll);

  main.append(
    el("nav.crumbs", { "aria-label": "Breadcrumb" }, el("a", { href: "#/runs" }, "Runs"), " / ", el("span.mono", shortId(runId))),
    header,
    el("div.run-grid", graphCard, panelCard, tasksCard, whyCard),
    timelineCard);

  const refetch = throttle(() => loadDetail(), 500);
  load();

  async function load() {
    try {
      const [d, ev] = await Promise.all([
        get(`/api/v1/runs/${encodeURIComponent(runId)}`, null, ctx.signal),
        loadEvents().catch((e) => { showError(e, "events"); return { events: [] }; }),
      ]);
      if (!ctx.alive()) return;
      renderDetail(d);
      for (const e of ev.events || []) addEvent(e, { live: false });
      tlCount.textContent = String(timeline.children.length);
      timelineScroll.scrollTop = timelineScroll.scrollHeight;
      openStream();
    } catch (e) {
      if (!ctx.alive()) return;
      showError(e, "run");
      if (e.status === 404) {
        header.replaceChildren(emptyState("Run not found.", el("span", `No run with id ${runId}. `, el("a", { href: "#/runs" }, "Back to runs"))));
      }
    }
    ctx.ready();
  }

  /** All stored events, 1000 per request (bounded to 20 pages). */
  async function loadEvents() {
    const events = [];
    let after = 0;
    for (let page = 0; page < 20; page++) {
      const res = await get(`/api/v1/runs/${encodeURIComponent(runId)}/events`, { after, limit: 1000 }, ctx.signal);
      const batch = res.events || [];
      events.push(...batch);
      if (batch.length < 1000) break;
      after = batch[batch.length - 1].sequence;
    }
    return { events };
  }

  async function loadDetail() {
    try {
      const d = await get(`/api/v1/runs/${encodeURIComponent(runId)}`, null, ctx.signal);
      if (!ctx.alive()) return;
      clearError("run");
      renderDetail(d);
      if (!TERMINAL_RUN.has(runState) && !es) openStream();
    } catch (e) {
      if (ctx.alive()) showError(e, "run");
    }
  }

  function renderDetail(d) {
    detail = d;
    const run = d.run;
    tasks = new Map((d.tasks || []).map((t) => [t.name, t]));
    lastSeq = Math.max(lastSeq, d.last_sequence || 0);
    setRunState(run.state);
    setChildren(title, el("a.plain", { href: `#/runs?workflow=${encodeURIComponent(run.workflow)}` }, run.workflow), el("span.muted", `@${run.version}`));
    document.title = `${run.workflow} ${shortId(run.id)} · Braid`;
    renderMeta(run);
    if (run.reason) { reasonBox.hidden = false; setChildren(reasonBox, el("strong", run.state === "queued" ? "Queued: " : "Reason: "), run.reason); } else reasonBox.hidden = true;
    setChildren(progress, progressBar(countStates(d.tasks || [])), el("span.muted", summary(d.tasks || [])));
    if (!blobs.childNodes.length) {
      blobs.append(blobView(run.input, { label: "Run input", download: `/api/v1/runs/${run.id}/input` }));
      blobs.append(el("div.out-slot"));
    }
    const outSlot = blobs.querySelector(".out-slot");
    if (run.output && !outSlot.childNodes.length) outSlot.append(blobView(run.output, { label: "Run output", download: `/api/v1/runs/${run.id}/output` }));
    renderActions();

    const t0 = performance.now();
    const layoutMs = graph.render(d.tasks || []);
    renderTaskRows();
    renderWhy();
    if (firstRender && !selected) selected = (d.tasks || []).find((t) => t.state === "failed")?.name || null;
    if (selected && tasks.has(selected)) select(selected, { quiet: true, scroll: firstRender });
    else renderPanel();
    const now = performance.now();
    if (firstRender) {
      firstRender = false;
      window.__braidTimings = { runFirstRenderMs: now, runTasks: tasks.size, layoutMs, renderMs: now - t0, maxUpdateMs: 0 };
      main.setAttribute("data-first-render-ms", String(Math.round(now)));
    } else if (window.__braidTimings) {
      // The longest re-render of the detail after a live update (the page's own cost of staying live).
      window.__braidTimings.maxUpdateMs = Math.max(window.__braidTimings.maxUpdateMs || 0, now - t0);
    }
  }

  function renderMeta(run) {
    const item = (k, v) => [el("dt", k), el("dd", v ?? el("span.muted", "—"))];
    setChildren(meta,
      item("Run id", el("span.mono.select-all", run.id)),
      item("Trigger", el("span", run.trigger_source || "—", run.schedule_id ? el("a", { href: "#/schedules", class: "muted" }, " (schedule)") : null)),
      item("Priority", run.priority),
      item("Idempotency key", run.idempotency_key ? el("span.mono", run.idempotency_key) : null),
      item("Created", el("span.num", { title: run.created_at }, dateTime(run.created_at))),
      item("Started", run.started_at ? el("span.num", { title: run.started_at }, dateTime(run.started_at)) : null),
      item("Finished", run.finished_at ? el("span.num", { title: run.finished_at }, dateTime(run.finished_at)) : null),
      item("Duration", run.started_at ? liveSpan(run.started_at, run.finished_at) : null),
      run.concurrency_key ? item("Concurrency key", el("span.mono", run.concurrency_key)) : null,
      run.scheduled_for ? item("Scheduled for", el("span.num", dateTime(run.scheduled_for))) : null);
  }

  function setRunState(state) {
    runState = state;
    setBadge(stateBadge, state);
  }

  function renderActions() {
    const finished = TERMINAL_RUN.has(runState);
    const anyFailed = [...tasks.values()].some((t) => t.state === "failed");
    const want = `${finished}|${anyFailed}`;
    if (actions.dataset.sig === want) return;
    actions.dataset.sig = want;
    setChildren(actions,
      !finished ? el("button.btn.danger", { type: "button", dataset: { action: "cancel" }, on: { click: doCancel } }, "⊘ Cancel") : null,
      el("button.btn", { type: "button", dataset: { action: "rerun" }, on: { click: doRerun } }, "↻ Re-run"),
      anyFailed ? el("button.btn.primary", { type: "button", dataset: { action: "redrive" }, on: { click: doRedrive } }, "⟳ Redrive dead letters") : null);
  }

  function renderTaskRows() {
    const list = [...tasks.values()];
    taskCount.textContent = `${list.length} tasks`;
    if (!list.length) { placeholderRow(taskBody, 6, emptyState("This workflow has no tasks."), "empty"); return; }
    syncRows(taskBody, list, (t) => t.name, TASK_COLUMNS, (t) => ({
      dataset: { taskRow: t.name, state: t.state },
      class: t.name === selected ? "selected" : "",
    }));
  }

  /** Tasks waiting for the same reason are one entry: a fan-out of 168 is one line, not 168. */
  function renderWhy() {
    const blocked = [...tasks.values()].filter((t) => t.blocker);
    const sig = `${runState}|${[...whyOpen].join(",")}|` + blocked.map((t) => `${t.name}:${t.state}:${t.blocker.kind}:${t.blocker.message}`).join("|");
    if (sig === whySig) return;
    whySig = sig;
    whyCount.textContent = blocked.length ? `${blocked.length} waiting` : "";
    if (!blocked.length) {
      const msg = TERMINAL_RUN.has(runState) ? `The run has ${runState}; nothing is waiting.` : "Every unfinished task is running right now.";
      setChildren(whyList, el("li.why-empty", emptyState("Nothing is blocked.", msg)));
      return;
    }
    const groups = new Map();
    for (const t of blocked) {
      const key = `${t.blocker.kind}\u0000${t.blocker.message}`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(t);
    }
    const ordered = [...groups.entries()].sort(([, a], [, b]) =>
      (BLOCKER_ORDER[a[0].blocker.kind] ?? 9) - (BLOCKER_ORDER[b[0].blocker.kind] ?? 9) || b.length - a.length);
    const items = ordered.map(([key, ts]) => {
      const b = ts[0].blocker;
      const shown = whyOpen.has(key) ? ts : ts.slice(0, WHY_NAMES);
      const more = ts.length - shown.length;
      return el("li.why-item", { dataset: { kind: b.kind } },
        el("div.why-top",
          el("span.tag", { class: `k-${b.kind}` }, KIND_LABEL[b.kind] || b.kind),
          el("span.muted.num", ts.length === 1 ? "1 task" : `${ts.length} tasks`)),
        el("p.why-msg", b.message || ""),
        el("p.why-tasks", shown.map((t, i) => [i ? " " : "",
          el("button.linkish", { type: "button", dataset: { blockerTask: t.name }, on: { click: () => select(t.name, { scroll: true }) } }, t.name)]),
          more > 0 ? [" ", el("button.linkish.muted", { type: "button", on: { click: () => { whyOpen.add(key); renderWhy(); } } }, `and ${more} more`)] : null),
        b.waiting_on?.length ? el("ul.waiting", b.waiting_on.map((w) => el("li", badge(w.state), " ",
          el("button.linkish", { type: "button", on: { click: () => select(w.task, { scroll: true }) } }, w.task)))) : null,
        b.until ? el("p.muted.num", "Backoff until ", el("span", { title: b.until }, dateTime(b.until)), " (", relTime(b.until), ")") : null,
        b.task_type && b.kind !== "dependencies" ? el("p.muted", "Task type ", el("code", b.task_type), " · ", el("a", { href: "#/queues" }, "queues"), " · ", el("a", { href: "#/workers" }, "workers")) : null);
    });
    setChildren(whyList, items);
  }

  function select(name, { scroll = false, quiet = false, fromGraph = false } = {}) {
    if (!tasks.has(name)) return;
    selected = name;
    graph.select(name, { scroll: scroll && !fromGraph });
    for (const tr of taskBody.querySelectorAll("tr.selected")) tr.classList.remove("selected");
    const row = taskBody.querySelector(`tr[data-task-row="${CSS.escape(name)}"]`);
    if (row) {
      row.classList.add("selected");
      if (scroll || fromGraph) {
        const sc = row.closest(".scroll-y");
        if (sc && (row.offsetTop < sc.scrollTop || row.offsetTop > sc.scrollTop + sc.clientHeight - 40)) sc.scrollTop = row.offsetTop - 60;
      }
    }
    renderPanel();
    if (!quiet) ctx.setQuery({ task: name }, { replace: true });
  }

  function renderPanel() {
    const t = selected && tasks.get(selected);
    const sig = t ? JSON.stringify(t) : "";
    if (sig === panelSig) return;
    panelSig = sig;
    if (!t) { setChildren(panel, emptyState("No task selected.", "Click a node in the graph or a row in the table.")); return; }
    const open = new Set([...panel.querySelectorAll("details[open][data-k]")].map((d) => d.dataset.k));
    const att = (t.attempts || []).slice().reverse();
    const attemptsTable = att.length
      ? el("div.table-wrap", el("table.attempts",
        el("thead", el("tr", ["#", "Worker", "Started", "Duration", "Outcome"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", att.flatMap((a) => [
          el("tr", { dataset: { attempt: a.attempt } },
            el("td.num", String(a.attempt)),
            el("td", a.worker_name || a.worker_id ? el("span", { title: a.worker_id || "" }, a.worker_name || shortId(a.worker_id), a.worker_name && a.worker_id ? el("span.muted.mono", ` ${shortId(a.worker_id)}`) : null) : el("span.muted", "—")),
            el("td.num.nowrap", { title: a.started_at || "" }, clock(a.started_at)),
            el("td.num.nowrap", { title: a.finished_at ? `finished ${a.finished_at}` : "still running" }, a.started_at ? liveSpan(a.started_at, a.finished_at) : "—"),
            el("td", a.outcome ? badge(a.outcome === "lost" ? "lost" : a.outcome) : badge("leased"))),
          a.error ? el("tr.attempt-error", el("td", { colspan: "5" }, errorView(a.error))) : null,
        ]))))
      : el("p.muted", "No attempts yet.");
    const det = (k, summary, ...body) => el("details", { dataset: { k }, open: open.has(k) || undefined }, el("summary", summary), ...body);
    setChildren(panel,
      el("div.panel-title", badge(t.state), el("h3", t.name)),
      el("dl.meta.compact",
        el("dt", "Type"), el("dd", el("code", t.task_type)),
        el("dt", "Attempt"), el("dd.num", `${t.attempt} of ${t.max_attempts}`),
        el("dt", "Depends on"), el("dd", t.depends_on?.length ? t.depends_on.map((d, i) => [i ? ", " : "", el("button.linkish", { type: "button", on: { click: () => select(d, { scroll: true }) } }, d)]) : el("span.muted", "—")),
        el("dt", "Available"), el("dd.num", t.available_at ? el("span", { title: t.available_at }, dateTime(t.available_at), " (", relTime(t.available_at), ")") : "—"),
        el("dt", "Finished"), el("dd.num", t.finished_at ? dateTime(t.finished_at) : "—")),
      t.blocker ? el("div.blocker", el("strong", "Waiting: "), t.blocker.message,
        t.blocker.until ? el("span.muted", " — until ", relTime(t.blocker.until)) : null) : null,
      t.last_error ? el("div.panel-sec", el("h4", "Last error"), errorView(t.last_error)) : null,
      el("div.panel-sec", el("h4", `Attempts (${att.length})`), attemptsTable),
      el("div.panel-sec", el("h4", "Data"),
        t.output ? blobView(t.output, { label: "Output", open: open.has("output") }) : el("p.muted", "No output yet."),
        inputView(t, open.has("input"))),
      det("raw", "Raw task JSON", el("pre.json", JSON.stringify({ ...t, output: t.output ? { ...t.output, text: "…" } : null }, null, 2))));
  }

  /** The task's input, as its worker receives it: loaded from the API when first opened. */
  function inputView(t, isOpen) {
    const key = `${t.name}#${t.attempt}`;
    const body = el("div.input-body", el("p.muted", "Loading…"));
    const fill = (blob) => setChildren(body, el("pre.json", blob.text ?? ""),
      el("p.blob-links", blob.truncated ? "Showing the first 64 KiB. " : "",
        el("a", { href: blob.download || t.input_download, download: "" }, blob.truncated ? "Download full" : "Download")));
    const load = async () => {
      if (inputs.has(key)) { fill(inputs.get(key)); return; }
      try {
        const res = await get(`/api/v1/runs/${encodeURIComponent(runId)}/tasks/${encodeURIComponent(t.name)}`, null, ctx.signal);
        inputs.set(key, res.input);
        if (ctx.alive()) fill(res.input);
      } catch (e) {
        if (ctx.alive()) setChildren(body, el("p.error-msg", `Could not load the input: ${e.message || e}`));
      }
    };
    const d = el("details.blob", { dataset: { k: "input" }, open: isOpen || undefined },
      el("summary", el("span", "Input"), el("span.muted", " run input and dependency outputs")), body);
    d.addEventListener("toggle", () => { if (d.open) load(); });
    if (isOpen) load();
    return d;
  }

  // --- live stream ---
  function openStream() {
    if (es) return;
    const src = subscribe(`/v1/runs/${encodeURIComponent(runId)}/events?after=${lastSeq}`, {
      onEvent: (e) => queueLive(e),
      onOpen: () => setLive("on"),
      onError: () => {
        if (TERMINAL_RUN.has(runState) || src.readyState === EventSource.CLOSED) {
          src.close();
          if (es === src) es = null;
          setLive(TERMINAL_RUN.has(runState) ? "done" : "off");
        } else setLive("reconnecting");
      },
    });
    es = src;
  }

  // Live events are applied once per animation frame: a busy run sends hundreds a second, and
  // measuring the timeline's scroll position after each DOM change would force a layout each time.
  let liveQueue = [];
  function queueLive(e) {
    liveQueue.push(e);
    if (liveQueue.length === 1) requestAnimationFrame(flushLive);
  }
  function flushLive() {
    const batch = liveQueue;
    liveQueue = [];
    if (!ctx.alive()) return;
    const atBottom = timelineScroll.scrollTop + timelineScroll.clientHeight >= timelineScroll.scrollHeight - 24;
    for (const e of batch) addEvent(e, { live: true });
    tlCount.textContent = String(timeline.children.length);
    if (atBottom) timelineScroll.scrollTop = timelineScroll.scrollHeight;
  }

  function addEvent(e, { live }) {
    const seq = e.sequence;
    if (seq != null) {
      if (seen.has(seq)) return;
      seen.add(seq);
      if (seq > lastSeq) lastSeq = seq;
    }
    const kind = e.kind;
    const taskState = TASK_EVENT_STATE[kind];
    const runStateNew = RUN_EVENT_STATE[kind];
    if (live) {
      if (taskState && e.task_name && tasks.has(e.task_name)) {
        const t = tasks.get(e.task_name);
        t.state = taskState;
        if (e.attempt) t.attempt = Math.max(t.attempt || 0, e.attempt);
        graph.setState(e.task_name, taskState, t);
        const row = taskBody.querySelector(`tr[data-task-row="${CSS.escape(e.task_name)}"]`);
        if (row) {
          row.dataset.state = taskState;
          const b = row.querySelector(".badge");
          if (b) setBadge(b, taskState);
        }
      }
      if (runStateNew) { setRunState(runStateNew); renderActions(); }
      refetch();
    }
    const st = taskState || runStateNew || (kind === "dead_letter" ? "failed" : kind === "run_created" ? "queued" : kind === "lease_expired" ? "lost" : "");
    const item = el("li.tl-item", { dataset: { sequence: String(seq ?? ""), kind } },
      el("time.num.tl-time", { datetime: e.at || "", title: e.at || "" }, clock(e.at)),
      el("span.tl-kind", { dataset: { state: st } }, el("span", { "aria-hidden": "true" }, st ? ICON_FOR(st) : "•"), " ", kind.replace(/_/g, " ")),
      e.task_name ? el("button.linkish.tl-task", { type: "button", on: { click: () => select(e.task_name, { scroll: true }) } }, e.task_name) : el("span.tl-task.muted", "run"),
      e.attempt ? el("span.muted.num", `#${e.attempt}`) : null,
      detailText(e.detail) ? el("span.tl-detail", { title: compactJson(e.detail, 2000) }, detailText(e.detail)) : null);
    // keep sequence order even if a late event arrives
    let before = null;
    if (seq != null) {
      for (let n = timeline.lastElementChild; n; n = n.previousElementSibling) {
        if (Number(n.dataset.sequence) < seq) break;
        before = n;
      }
    }
    timeline.insertBefore(item, before);
  }

  // --- actions ---
  async function doCancel() {
    const ok = await confirmDialog({ title: "Cancel this run?", body: el("p", "Running tasks are asked to stop; pending and ready tasks are cancelled. Run ", el("code", shortId(runId)), ` of ${detail?.run.workflow}.`), confirmLabel: "Cancel run", danger: true });
    if (!ok) return;
    try {
      const res = await post(`/api/v1/runs/${encodeURIComponent(runId)}/cancel`, { reason: "cancelled from dashboard" });
      flash(res.changed === false ? `The run was already ${res.state}.` : "Run cancelled.", "ok");
      if (res.state) setRunState(res.state);
      loadDetail();
    } catch (e) {
      flash(`Cancel failed: ${e.message}`, "error");
    }
  }

  async function doRerun() {
    const ok = await confirmDialog({ title: "Re-run this workflow?", body: `Starts a new run of ${detail?.run.workflow}@${detail?.run.version} with the same input.`, confirmLabel: "Start new run" });
    if (!ok) return;
    try {
      const res = await post(`/api/v1/runs/${encodeURIComponent(runId)}/rerun`, {});
      flash(el("span", "Started a new run: ", el("a", { href: `#/runs/${res.run_id}`, dataset: { newRun: res.run_id } }, shortId(res.run_id)), "."), "ok");
    } catch (e) {
      flash(`Re-run failed: ${e.message}`, "error");
    }
  }

  async function doRedrive() {
    const failed = [...tasks.values()].filter((t) => t.state === "failed").map((t) => t.name);
    const ok = await confirmDialog({ title: "Redrive dead letters?", body: el("div", el("p", `Re-queues ${failed.length} failed task${failed.length === 1 ? "" : "s"} of this run (and resumes the run):`), el("p.mono", failed.slice(0, 12).join(", ") + (failed.length > 12 ? ", …" : ""))), confirmLabel: "Redrive" });
    if (!ok) return;
    try {
      const res = await post(`/api/v1/runs/${encodeURIComponent(runId)}/redrive`, {});
      const n = (res.redriven || []).length;
      flash(`Redrove ${n} task${n === 1 ? "" : "s"}.`, "ok");
      await loadDetail();
      if (!es) openStream();
    } catch (e) {
      flash(`Redrive failed: ${e.message}`, "error");
    }
  }

  return {
    onQuery(q) { if (q.task && q.task !== selected) select(q.task, { scroll: true, quiet: true }); },
    unmount() { refetch.cancel(); es?.close(); es = null; setLive("off"); },
  };
}

const KIND_LABEL = {
  dependencies: "waiting on deps", run_queued: "run queued", backoff: "backoff", no_worker: "no worker",
  workers_busy: "workers busy", dispatching: "dispatching", run_finished: "run finished",
};

const ICONS = { queued: "‖", running: "●", succeeded: "✓", failed: "✕", cancelled: "⊘", skipped: "↷", pending: "…", ready: "◷", leased: "▶", lost: "?" };
const ICON_FOR = (s) => ICONS[s] || "•";

function detailText(d) {
  if (!d || typeof d !== "object") return d ? String(d) : "";
  if (d.message) return d.message;
  if (d.error?.message) return d.error.message;
  return compactJson(d, 140);
}

function countStates(list) {
  const c = {};
  for (const t of list) c[t.state] = (c[t.state] || 0) + 1;
  return c;
}

function summary(list) {
  const c = countStates(list);
  return ["leased", "ready", "pending", "failed", "skipped", "cancelled"].filter((k) => c[k]).map((k) => `${c[k]} ${k}`).join(" · ");
}

const TASK_COLUMNS = [
  { render: (t) => badge(t.state) },
  { cls: "task-name", render: (t) => el("button.linkish", { type: "button", title: t.name }, t.name) },
  { cls: "muted", render: (t) => t.task_type },
  { cls: "num", render: (t) => `${t.attempt}/${t.max_attempts}` },
  { cls: "num nowrap", render: (t) => { const a = t.attempts?.[t.attempts.length - 1]; return a?.started_at ? liveSpan(a.started_at, a.finished_at) : el("span.muted", "—"); } },
  { cls: "blocker-cell", render: (t) => (t.blocker ? el("span", { title: t.blocker.message }, t.blocker.kind === "dependencies" && t.blocker.waiting_on?.length ? t.blocker.waiting_on.map((w) => w.task).join(", ") : t.blocker.message) : t.last_error && t.state === "failed" ? el("span.err-text", { title: t.last_error.message }, t.last_error.message) : "") },
];
