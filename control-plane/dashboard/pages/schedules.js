// pages/schedules.js: cron schedules — next fires, recent runs, pause/resume; polled every 5 s.
import { get, post } from "../api.js";
import { badge, clearError, el, emptyState, flash, hintText, placeholderRow, poll, relTime, showError, syncRows, table, tag } from "../components.js";
import { dateTime } from "../format.js";

export function mount(main, _route, ctx) {
  const { wrap, tbody } = table(["Name", "Workflow", "Cron", "Overlap", "Next fires", "Recent runs", "Status", ""], { caption: "Schedules", cls: "schedules-table" });
  placeholderRow(tbody, 8, el("span.muted", "Loading schedules…"), "loading");
  main.append(el("div.page-head", el("h1", "Schedules"), el("span.spacer"), el("span.muted.small", "Refreshes every 5 s")), el("section.card.flush", wrap));

  tbody.addEventListener("click", async (e) => {
    const btn = e.target.closest("button[data-action=pause], button[data-action=resume]");
    if (!btn) return;
    const tr = btn.closest("tr[data-schedule-id]");
    const id = tr.dataset.scheduleId;
    const action = btn.dataset.action;
    btn.disabled = true;
    try {
      const s = await post(`/api/v1/schedules/${encodeURIComponent(id)}/${action}`, {});
      flash(`${action === "pause" ? "Paused" : "Resumed"} schedule ${s.name || id}.`, "ok");
      if (s && s.id) render([s], true);
      refresh();
    } catch (err) {
      flash(`Could not ${action} the schedule: ${err.message}`, "error");
      btn.disabled = false;
    }
  });

  let last = [];
  function render(list, merge = false) {
    if (merge) list = last.map((s) => list.find((x) => x.id === s.id) || s);
    last = list;
    if (!list.length) placeholderRow(tbody, 8, emptyState("No schedules.", hintText("Create one with `braid schedule create NAME --workflow WF --cron '*/5 * * * *'`.")), "empty");
    else syncRows(tbody, list, (s) => s.id, COLUMNS, (s) => ({ dataset: { scheduleId: s.id, paused: String(!!s.paused) } }));
  }

  async function refresh() {
    try {
      const res = await get("/api/v1/schedules", null, ctx.signal);
      if (!ctx.alive()) return;
      clearError("poll");
      render(res.schedules || []);
    } catch (e) {
      if (ctx.alive()) showError(e, "poll");
    }
    ctx.ready();
  }
  const stop = poll(refresh, 5000, ctx);
  return { unmount: stop };
}

const COLUMNS = [
  { cls: "strong", render: (s) => s.name },
  { render: (s) => el("a.plain", { href: `#/runs?workflow=${encodeURIComponent(s.workflow)}` }, s.workflow) },
  { cls: "nowrap", render: (s) => el("span", el("code", s.cron), el("span.muted.small", ` ${s.timezone || "UTC"}`)) },
  { render: (s) => tag(s.overlap || "—") },
  { cls: "num fires", render: (s) => (s.paused ? el("span.muted", "paused") : el("ul.fires", (s.next_fire_times || []).slice(0, 3).map((t) => el("li", { title: t }, dateTime(t), " ", el("span.muted", "(", relTime(t), ")"))))) },
  { cls: "recent", render: (s) => ((s.recent_runs || []).length ? el("span.recent-runs", s.recent_runs.map((r) => el("a.run-chip", { href: `#/runs/${r.id}`, title: `${r.state} · ${dateTime(r.scheduled_for || r.created_at)}` }, badge(r.state, { class: "mini" })))) : el("span.muted", "none yet")) },
  { render: (s) => (s.paused ? tag("‖ paused", "warn") : tag("● active", "ok")) },
  { render: (s) => (s.paused
    ? el("button.btn.small", { type: "button", dataset: { action: "resume" } }, "▶ Resume")
    : el("button.btn.small", { type: "button", dataset: { action: "pause" } }, "‖ Pause")) },
];
