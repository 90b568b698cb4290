// pages/runs.js: the runs list — filters in the URL hash, token pagination, live refresh from /v1/events.
import { get, subscribe, throttle } from "../api.js";
import {
  badge, clearError, el, emptyState, fillSelect, hintText, liveSpan, placeholderRow, progressBar,
  RUN_STATES, relTime, setLive, showError, syncRows, table, tag,
} from "../components.js";
import { dateTime, fromLocalInput, shortId, toLocalInput } from "../format.js";

const FILTERS = ["workflow", "state", "source", "key", "id", "after", "before"];

export function mount(main, { query }, ctx) {
  let filters = pick(query);
  let tokens = [""];          // page tokens; tokens[i] fetches page i
  let pageIndex = 0;
  let nextToken = "";
  let loading = false;
  let pendingNew = false;

  // --- filter form ---
  const workflowSel = el("select", { name: "workflow", id: "f-workflow" }, el("option", { value: "" }, "All workflows"));
  const stateBoxes = RUN_STATES.map((s) => el("label.chip", { dataset: { state: s } },
    el("input", { type: "checkbox", name: "state", value: s }), badge(s)));
  const sourceSel = el("select", { name: "source", id: "f-source" });
  fillSelect(sourceSel, [["", "Any trigger"], ["api", "api"], ["schedule", "schedule"], ["redrive", "redrive"]]);
  const keyIn = el("input", { type: "search", name: "key", id: "f-key", placeholder: "exact key", autocomplete: "off", spellcheck: "false" });
  const idIn = el("input", { type: "search", name: "id", id: "f-id", placeholder: "run UUID", autocomplete: "off", spellcheck: "false" });
  const afterIn = el("input", { type: "datetime-local", name: "after", id: "f-after" });
  const beforeIn = el("input", { type: "datetime-local", name: "before", id: "f-before" });
  const field = (label, id, input) => el("div.field", el("label", { for: id }, label), input);
  const form = el("form.filters", { role: "search", "aria-label": "Filter runs" },
    field("Workflow", "f-workflow", workflowSel),
    el("fieldset.field.states", el("legend", "State"), el("div.chips", stateBoxes)),
    field("Trigger", "f-source", sourceSel),
    field("Idempotency key", "f-key", keyIn),
    field("Run id", "f-id", idIn),
    field("Created after", "f-after", afterIn),
    field("Created before", "f-before", beforeIn),
    el("div.field.actions", el("button.btn.primary", { type: "submit" }, "Apply"),
      el("button.btn", { type: "button", dataset: { action: "clear-filters" }, on: { click: clearFilters } }, "Clear")));
  form.addEventListener("submit", (e) => { e.preventDefault(); applyForm(); });
  for (const cb of form.querySelectorAll("input[type=checkbox]")) cb.addEventListener("change", applyForm);
  workflowSel.addEventListener("change", applyForm);
  sourceSel.addEventListener("change", applyForm);

  // --- table ---
  const { wrap, tbody } = table(["Run", "State", "Workflow", "Trigger", "Priority", "Created:num", "Duration:num", "Tasks", "Reason"], { caption: "Runs", cls: "runs-table" });
  placeholderRow(tbody, 9, el("span.muted", "Loading runs…"), "loading");
  const newHint = el("button.hint-new", { type: "button", hidden: true, on: { click: () => { goFirst(); } } }, "↻ New runs — refresh");
  const prevBtn = el("button.btn", { type: "button", dataset: { action: "prev-page" }, disabled: true, on: { click: prev } }, "← Newer");
  const nextBtn = el("button.btn", { type: "button", dataset: { action: "next-page" }, disabled: true, on: { click: next } }, "Older →");
  const pageInfo = el("span.muted.num", "");
  const count = el("span.muted.num", "");

  main.append(
    el("div.page-head", el("h1", "Runs"), count, newHint),
    form,
    el("section.card.flush", wrap, el("div.pager", pageInfo, el("span.spacer"), prevBtn, nextBtn)));

  writeForm();
  loadWorkflows();
  load();

  // --- live updates ---
  const refresh = throttle(() => {
    if (pageIndex === 0) load({ quiet: true });
    else { pendingNew = true; newHint.hidden = false; }
  }, 500);
  const es = subscribe("/v1/events", {
    onEvent: () => refresh(),
    onOpen: () => setLive("on"),
    onError: (_e, src) => setLive(src.readyState === EventSource.CLOSED ? "off" : "reconnecting"),
  });

  function pick(q) {
    const f = {};
    for (const k of FILTERS) if (q[k]) f[k] = q[k];
    return f;
  }

  function writeForm() {
    workflowSel.value = filters.workflow || "";
    if (filters.workflow && workflowSel.value !== filters.workflow) {
      workflowSel.append(el("option", { value: filters.workflow }, filters.workflow));
      workflowSel.value = filters.workflow;
    }
    const states = new Set((filters.state || "").split(",").filter(Boolean));
    for (const cb of form.querySelectorAll("input[name=state]")) cb.checked = states.has(cb.value);
    sourceSel.value = filters.source || "";
    keyIn.value = filters.key || "";
    idIn.value = filters.id || "";
    afterIn.value = toLocalInput(filters.after);
    beforeIn.value = toLocalInput(filters.before);
  }

  function readForm() {
    const states = [...form.querySelectorAll("input[name=state]:checked")].map((c) => c.value);
    return {
      workflow: workflowSel.value,
      state: states.join(","),
      source: sourceSel.value,
      key: keyIn.value.trim(),
      id: idIn.value.trim(),
      after: fromLocalInput(afterIn.value),
      before: fromLocalInput(beforeIn.value),
    };
  }

  function applyForm() {
    ctx.setQuery(readForm());
  }

  function clearFilters() {
    ctx.setQuery({});
  }

  async function loadWorkflows() {
    try {
      const res = await get("/api/v1/workflows", null, ctx.signal);
      const cur = filters.workflow || "";
      const names = (res.workflows || []).map((w) => w.name).sort();
      if (cur && !names.includes(cur)) names.unshift(cur);
      fillSelect(workflowSel, [["", "All workflows"], ...names.map((n) => [n, n])], cur);
    } catch (e) {
      showError(e, "workflows");
    }
  }

  function goFirst() {
    tokens = [""];
    pageIndex = 0;
    pendingNew = false;
    newHint.hidden = true;
    load();
  }

  function next() {
    if (!nextToken) return;
    tokens[pageIndex + 1] = nextToken;
    pageIndex += 1;
    load();
  }

  function prev() {
    if (pageIndex === 0) return;
    pageIndex -= 1;
    if (pageIndex === 0) { pendingNew = false; newHint.hidden = true; }
    load();
  }

  async function load({ quiet = false } = {}) {
    if (loading && quiet) { refresh(); return; }
    loading = true;
    const at = pageIndex;
    try {
      const res = await get("/api/v1/runs", { ...filters, page_size: 50, page_token: tokens[at] }, ctx.signal);
      if (!ctx.alive() || at !== pageIndex) return;
      clearError("runs");
      nextToken = res.next_page_token || "";
      render(res.runs || []);
    } catch (e) {
      if (!ctx.alive()) return;
      showError(e, "runs");
      if (!tbody.querySelector("tr[data-key]")) placeholderRow(tbody, 9, el("span.muted", "Could not load runs."), "empty");
      ctx.ready();
    } finally {
      loading = false;
    }
  }

  function render(runs) {
    prevBtn.disabled = pageIndex === 0;
    nextBtn.disabled = !nextToken;
    pageInfo.textContent = `Page ${pageIndex + 1}`;
    count.textContent = runs.length ? `${runs.length}${nextToken ? "+" : ""} shown` : "";
    if (!runs.length) {
      const filtered = Object.values(filters).some(Boolean);
      placeholderRow(tbody, 9, filtered
        ? emptyState("No runs match these filters.", el("span", "Try widening the time range or ", el("a", { href: "#/runs" }, "clear the filters"), "."))
        : emptyState("No runs yet.", hintText("Trigger one with `braid run start WORKFLOW`.")));
    } else {
      syncRows(tbody, runs, (r) => r.id, COLUMNS, (r) => ({ dataset: { runId: r.id, state: r.state } }));
    }
    ctx.ready();
  }

  return {
    onQuery(q) {
      filters = pick(q);
      writeForm();
      tokens = [""];
      pageIndex = 0;
      pendingNew = false;
      newHint.hidden = true;
      load();
    },
    unmount() {
      refresh.cancel();
      es.close();
      setLive("off");
    },
  };
}

const COLUMNS = [
  { cls: "mono", render: (r) => el("a", { href: `#/runs/${r.id}`, title: r.id }, shortId(r.id)) },
  { render: (r) => badge(r.state) },
  { cls: "wf", render: (r) => el("span", el("a.plain", { href: `#/runs?workflow=${encodeURIComponent(r.workflow)}` }, r.workflow), el("span.muted", `@${r.version}`)) },
  { render: (r) => el("span", r.trigger_source || "—", null) },
  { render: (r) => (r.priority && r.priority !== "normal" ? tag(r.priority, r.priority === "high" ? "warn" : "") : el("span.muted", r.priority || "—")) },
  { cls: "num nowrap", render: (r) => el("span", { title: dateTime(r.created_at) }, relTime(r.created_at)) },
  { cls: "num nowrap", render: (r) => (r.started_at ? liveSpan(r.started_at, r.finished_at) : el("span.muted", "—")) },
  { render: (r) => progressBar(r.task_counts || {}) },
  { cls: "reason", render: (r) => (r.reason ? el("span", { title: r.reason }, r.reason) : "") },
];
