// pages/dead_letters.js: failure groups and dead letters — filter, select and redrive (selected or all matching).
import { get, post } from "../api.js";
import {
  clearError, confirmDialog, el, emptyState, fillSelect, flash, placeholderRow, relTime, showError,
  syncRows, table, tag,
} from "../components.js";
import { dateTime, shortId } from "../format.js";

const KEYS = ["workflow", "task", "error_type"];

export function mount(main, { query }, ctx) {
  let filters = pick(query);
  let tokens = [""];
  let pageIndex = 0;
  let nextToken = "";
  let current = [];
  let total = null;
  const selected = new Set();

  const wfSel = el("select", { id: "dl-workflow" });
  fillSelect(wfSel, [["", "All workflows"]]);
  const taskIn = el("input", { type: "search", id: "dl-task", placeholder: "task name", autocomplete: "off" });
  const typeIn = el("input", { type: "search", id: "dl-type", placeholder: "error type", autocomplete: "off" });
  const field = (label, id, input) => el("div.field", el("label", { for: id }, label), input);
  const form = el("form.filters", { role: "search", "aria-label": "Filter dead letters" },
    field("Workflow", "dl-workflow", wfSel), field("Task", "dl-task", taskIn), field("Error type", "dl-type", typeIn),
    el("div.field.actions", el("button.btn.primary", { type: "submit" }, "Apply"),
      el("button.btn", { type: "button", on: { click: () => ctx.setQuery({}) } }, "Clear")));
  form.addEventListener("submit", (e) => { e.preventDefault(); ctx.setQuery({ workflow: wfSel.value, task: taskIn.value.trim(), error_type: typeIn.value.trim() }); });
  wfSel.addEventListener("change", () => form.requestSubmit());

  const groups = table(["Workflow", "Task", "Error type", "Count:num", "Latest error", "Latest:num"], { caption: "Failure groups", cls: "groups-table" });
  placeholderRow(groups.tbody, 6, el("span.muted", "Loading failure groups…"), "loading");
  const totalInfo = el("span.muted.num");

  const selectAll = el("input", { type: "checkbox", "aria-label": "Select all on this page", dataset: { select: "all" } });
  const dl = table([el("th", { scope: "col", class: "check" }, selectAll), "Dead letter", "Run", "Workflow", "Task", "Error", "Attempts:num", "Created:num"], { caption: "Dead letters", cls: "dl-table" });
  placeholderRow(dl.tbody, 8, el("span.muted", "Loading dead letters…"), "loading");
  const selInfo = el("span.muted.num", "0 selected");
  const redriveSel = el("button.btn.primary", { type: "button", dataset: { action: "redrive-selected" }, disabled: true, on: { click: redriveSelected } }, "Redrive selected");
  const redriveAll = el("button.btn", { type: "button", dataset: { action: "redrive-matching" }, on: { click: redriveMatching } }, "Redrive all matching filter");
  const prevBtn = el("button.btn", { type: "button", disabled: true, on: { click: () => { if (pageIndex) { pageIndex--; loadList(); } } } }, "← Newer");
  const nextBtn = el("button.btn", { type: "button", disabled: true, on: { click: () => { if (nextToken) { tokens[pageIndex + 1] = nextToken; pageIndex++; loadList(); } } } }, "Older →");
  const filterNote = el("span.filter-note");

  main.append(
    el("div.page-head", el("h1", "Failures and dead letters"), totalInfo),
    form,
    el("section.card.flush", el("div.card-head", el("h2", "Failure groups"), el("span.muted", "Click a group to filter")), groups.wrap),
    el("section.card.flush",
      el("div.card-head", el("h2", "Dead letters"), filterNote, el("span.spacer"), selInfo, redriveSel, redriveAll),
      dl.wrap,
      el("div.pager", el("span.spacer"), prevBtn, nextBtn)));

  selectAll.addEventListener("change", () => {
    for (const d of current) if (selectAll.checked) selected.add(d.id); else selected.delete(d.id);
    syncChecks();
  });
  dl.tbody.addEventListener("change", (e) => {
    const cb = e.target.closest("input[data-select]");
    if (!cb) return;
    if (cb.checked) selected.add(cb.dataset.select); else selected.delete(cb.dataset.select);
    syncChecks();
  });
  groups.tbody.addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-group-key]");
    if (!tr || e.target.closest("a")) return;
    applyGroup(tr);
  });
  groups.tbody.addEventListener("keydown", (e) => {
    const tr = e.target.closest("tr[data-group-key]");
    if (tr && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); applyGroup(tr); }
  });

  writeForm();
  loadWorkflows();
  loadAll();

  function applyGroup(tr) {
    ctx.setQuery({ workflow: tr.dataset.workflow, task: tr.dataset.task, error_type: tr.dataset.errorType });
  }

  function pick(q) {
    const f = {};
    for (const k of KEYS) if (q[k]) f[k] = q[k];
    return f;
  }

  function writeForm() {
    if (filters.workflow && ![...wfSel.options].some((o) => o.value === filters.workflow)) wfSel.append(el("option", { value: filters.workflow }, filters.workflow));
    wfSel.value = filters.workflow || "";
    taskIn.value = filters.task || "";
    typeIn.value = filters.error_type || "";
    const parts = KEYS.filter((k) => filters[k]).map((k) => `${k.replace("_", " ")} = ${filters[k]}`);
    filterNote.replaceChildren(parts.length ? tag(parts.join(" · "), "info") : el("span.muted", "all"));
  }

  async function loadWorkflows() {
    try {
      const res = await get("/api/v1/workflows", null, ctx.signal);
      const names = (res.workflows || []).map((w) => w.name).sort();
      if (filters.workflow && !names.includes(filters.workflow)) names.unshift(filters.workflow);
      fillSelect(wfSel, [["", "All workflows"], ...names.map((n) => [n, n])], filters.workflow || "");
    } catch (e) { showError(e, "workflows"); }
  }

  async function loadAll() {
    await Promise.all([loadGroups(), loadList()]);
    ctx.ready();
  }

  async function loadGroups() {
    try {
      const res = await get("/api/v1/dead-letters/groups", filters, ctx.signal);
      if (!ctx.alive()) return;
      clearError("groups");
      total = res.total ?? null;
      totalInfo.textContent = `${res.total ?? 0} dead letter${res.total === 1 ? "" : "s"}${Object.keys(filters).length ? " match" : ""}`;
      const gs = res.groups || [];
      if (!gs.length) { placeholderRow(groups.tbody, 6, emptyState("No failures.", "Tasks that exhaust their attempts land here."), "empty"); return; }
      syncRows(groups.tbody, gs, groupKey, GROUP_COLUMNS, (g) => ({
        dataset: { groupKey: groupKey(g), workflow: g.workflow, task: g.task, errorType: g.error_type },
        class: "clickable" + (filters.workflow === g.workflow && filters.task === g.task && filters.error_type === g.error_type ? " selected" : ""),
      }));
      for (const tr of groups.tbody.querySelectorAll("tr[data-group-key]")) { tr.tabIndex = 0; tr.title = "Filter to this group"; }
    } catch (e) {
      if (ctx.alive()) { showError(e, "groups"); placeholderRow(groups.tbody, 6, el("span.muted", "Could not load groups."), "empty"); }
    }
  }

  async function loadList() {
    try {
      const res = await get("/api/v1/dead-letters", { ...filters, page_size: 50, page_token: tokens[pageIndex] }, ctx.signal);
      if (!ctx.alive()) return;
      clearError("dead-letters");
      current = res.dead_letters || [];
      nextToken = res.next_page_token || "";
      prevBtn.disabled = pageIndex === 0;
      nextBtn.disabled = !nextToken;
      const ids = new Set(current.map((d) => d.id));
      for (const id of [...selected]) if (!ids.has(id)) selected.delete(id);
      if (!current.length) placeholderRow(dl.tbody, 8, emptyState(Object.keys(filters).length ? "No dead letters match this filter." : "No dead letters.", "Nothing to redrive."), "empty");
      else syncRows(dl.tbody, current, (d) => d.id, DL_COLUMNS, (d) => ({ dataset: { deadLetterId: d.id } }));
      syncChecks();
    } catch (e) {
      if (ctx.alive()) { showError(e, "dead-letters"); placeholderRow(dl.tbody, 8, el("span.muted", "Could not load dead letters."), "empty"); }
    }
  }

  function syncChecks() {
    for (const cb of dl.tbody.querySelectorAll("input[data-select]")) cb.checked = selected.has(cb.dataset.select);
    selectAll.checked = current.length > 0 && current.every((d) => selected.has(d.id));
    selectAll.indeterminate = selected.size > 0 && !selectAll.checked;
    selInfo.textContent = `${selected.size} selected`;
    redriveSel.disabled = selected.size === 0;
    redriveAll.disabled = current.length === 0;
  }

  async function redriveSelected() {
    const ids = [...selected];
    if (!ids.length) return;
    const names = current.filter((d) => selected.has(d.id)).map((d) => `${d.workflow} / ${d.task}`);
    const ok = await confirmDialog({ title: `Redrive ${ids.length} dead letter${ids.length === 1 ? "" : "s"}?`,
      body: el("div", el("p", "The failed tasks are re-queued with fresh attempts and their runs resume."),
        el("ul.compact-list", names.slice(0, 8).map((n) => el("li", n)), names.length > 8 ? el("li.muted", `… and ${names.length - 8} more`) : null)),
      confirmLabel: `Redrive ${ids.length}` });
    if (!ok) return;
    await doRedrive({ ids });
  }

  async function redriveMatching() {
    const parts = KEYS.filter((k) => filters[k]).map((k) => `${k.replace("_", " ")} = “${filters[k]}”`);
    const ok = await confirmDialog({ title: "Redrive all matching dead letters?",
      body: el("div",
        el("p", parts.length ? `Every dead letter where ${parts.join(" and ")} is re-queued and its run resumes.` : "No filter is set: EVERY dead letter is re-queued and its run resumes."),
        el("p", el("strong", total == null ? "The number is unknown." : `${total} dead letter${total === 1 ? "" : "s"} match${total === 1 ? "es" : ""} right now.`))),
      confirmLabel: "Redrive all matching", danger: !parts.length });
    if (!ok) return;
    await doRedrive({ filter: { ...filters } });
  }

  async function doRedrive(body) {
    try {
      const res = await post("/api/v1/dead-letters/redrive", body);
      const n = res.redriven ?? 0;
      flash(`Redrove ${n} dead letter${n === 1 ? "" : "s"}.`, "ok");
      selected.clear();
      tokens = [""]; pageIndex = 0;
      await Promise.all([loadGroups(), loadList()]);
    } catch (e) {
      flash(`Redrive failed: ${e.message}`, "error");
    }
  }

  return {
    onQuery(q) {
      filters = pick(q);
      tokens = [""]; pageIndex = 0;
      selected.clear();
      writeForm();
      loadAll();
    },
  };
}

const groupKey = (g) => `${g.workflow}|${g.task}|${g.error_type}`;

const GROUP_COLUMNS = [
  { render: (g) => g.workflow },
  { cls: "mono", render: (g) => g.task },
  { render: (g) => el("span.tag.bad", g.error_type || "error") },
  { cls: "num strong", render: (g) => String(g.count) },
  { cls: "err-cell", render: (g) => el("span.err-text", { title: g.latest_error?.message || "" }, g.latest_error?.message || "") },
  { cls: "num nowrap", render: (g) => el("span", relTime(g.latest_at), g.latest_run_id ? [" · ", el("a", { href: `#/runs/${g.latest_run_id}` }, "run")] : null) },
];

const DL_COLUMNS = [
  { cls: "check", render: (d) => el("input", { type: "checkbox", "aria-label": `Select dead letter ${shortId(d.id)}`, dataset: { select: d.id } }) },
  { cls: "mono", render: (d) => el("span", { title: d.id }, shortId(d.id)) },
  { cls: "mono", render: (d) => el("a", { href: `#/runs/${d.run_id}?task=${encodeURIComponent(d.task)}`, title: d.run_id }, shortId(d.run_id)) },
  { render: (d) => el("span", d.workflow, el("span.muted", `@${d.version}`)) },
  { render: (d) => el("span", el("span.mono", d.task), el("span.muted", ` ${d.task_type}`)) },
  { cls: "err-cell", render: (d) => el("span.err-line", el("span.tag.bad", d.error?.type || "error"), el("span.err-text", { title: d.error?.message || "" }, d.error?.message || "")) },
  { cls: "num", render: (d) => String(d.attempts ?? "—") },
  { cls: "num nowrap", render: (d) => el("span", { title: dateTime(d.created_at) }, relTime(d.created_at)) },
];
