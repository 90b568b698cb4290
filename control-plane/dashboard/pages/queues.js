// pages/queues.js: per-task-type queues — depth, leased, lag, throughput, workers, free slots; polled every 2 s.
import { get } from "../api.js";
import { clearError, el, emptyState, placeholderRow, poll, showError, syncRows, table, tag } from "../components.js";
import { duration } from "../format.js";

export function mount(main, _route, ctx) {
  const { wrap, tbody } = table(["Task type", "Ready:num", "Leased:num", "Lag:num", "Started / min:num", "Workers:num", "Free slots:num", "Health"], { caption: "Queues", cls: "queues-table" });
  placeholderRow(tbody, 8, el("span.muted", "Loading queues…"), "loading");
  const summary = el("span.muted.num");
  main.append(el("div.page-head", el("h1", "Queues"), summary, el("span.spacer"), el("span.muted.small", "Refreshes every 2 s")), el("section.card.flush", wrap));

  const stop = poll(async () => {
    try {
      const res = await get("/api/v1/queues", null, ctx.signal);
      if (!ctx.alive()) return;
      clearError("poll");
      const qs = res.queues || [];
      const ready = qs.reduce((a, q) => a + (q.ready || 0), 0);
      summary.textContent = qs.length ? `${qs.length} task type${qs.length === 1 ? "" : "s"} · ${ready} ready` : "";
      if (!qs.length) placeholderRow(tbody, 8, emptyState("No queues yet.", "A queue appears when a task type has work or a worker serving it."), "empty");
      else syncRows(tbody, qs, (q) => q.task_type, COLUMNS, (q) => ({ dataset: { taskType: q.task_type }, class: q.ready > 0 && !q.workers ? "warn-row" : "" }));
    } catch (e) {
      if (ctx.alive()) showError(e, "poll");
    }
    ctx.ready();
  }, 2000, ctx);
  return { unmount: stop };
}

const COLUMNS = [
  { cls: "mono strong", render: (q) => q.task_type },
  { cls: "num", render: (q) => String(q.ready ?? 0) },
  { cls: "num", render: (q) => String(q.leased ?? 0) },
  { cls: "num nowrap", render: (q) => (q.lag_seconds > 30 ? el("span.lag-high", { title: "Oldest ready task has waited more than 30 s" }, "⚠ ", duration(q.lag_seconds * 1000)) : el("span", q.lag_seconds ? duration(q.lag_seconds * 1000) : "0 s")) },
  { cls: "num", render: (q) => String(q.dispatched_last_minute ?? 0) },
  { cls: "num", render: (q) => String(q.workers ?? 0) },
  { cls: "num", render: (q) => String(q.free_slots ?? 0) },
  { render: (q) => (q.ready > 0 && !q.workers ? tag("⚠ no worker", "bad") : q.ready > 0 && !q.free_slots ? tag("◷ saturated", "warn") : tag("✓ ok", "ok")) },
];
