// pages/workers.js: connected workers — SDK, task types, slot usage, heartbeat, draining; polled every 2 s.
import { get } from "../api.js";
import { clearError, el, emptyState, hintText, placeholderRow, poll, relTime, showError, slotsBar, syncRows, table, tag } from "../components.js";
import { dateTime, shortId } from "../format.js";

export function mount(main, _route, ctx) {
  const { wrap, tbody } = table(["Name", "Id", "SDK", "Task types", "Slots used", "Last heartbeat:num", "Status", "Control plane", "Labels"], { caption: "Workers", cls: "workers-table" });
  placeholderRow(tbody, 9, el("span.muted", "Loading workers…"), "loading");
  const summary = el("span.muted.num");
  main.append(el("div.page-head", el("h1", "Workers"), summary, el("span.spacer"), el("span.muted.small", "Refreshes every 2 s")), el("section.card.flush", wrap));

  const stop = poll(async () => {
    try {
      const res = await get("/api/v1/workers", null, ctx.signal);
      if (!ctx.alive()) return;
      clearError("poll");
      const ws = res.workers || [];
      const used = ws.reduce((a, w) => a + (w.leases_held || 0), 0);
      const slots = ws.reduce((a, w) => a + (w.slots || 0), 0);
      summary.textContent = ws.length ? `${ws.length} worker${ws.length === 1 ? "" : "s"} · ${used}/${slots} slots busy` : "";
      if (!ws.length) placeholderRow(tbody, 9, emptyState("No workers connected.", hintText("Start one with an SDK, e.g. `braid worker --task-types echo`; it shows up here after its first heartbeat.")), "empty");
      else syncRows(tbody, ws, (w) => w.id, COLUMNS, (w) => ({ dataset: { workerId: w.id }, class: w.draining ? "draining" : "" }));
    } catch (e) {
      if (ctx.alive()) showError(e, "poll");
    }
    ctx.ready();
  }, 2000, ctx);
  return { unmount: stop };
}

const COLUMNS = [
  { cls: "strong", render: (w) => w.name || "—" },
  { cls: "mono", render: (w) => el("span", { title: w.id }, shortId(w.id)) },
  { cls: "nowrap", render: (w) => el("span", w.sdk_language || "?", el("span.muted", ` ${w.sdk_version || ""}`)) },
  { cls: "types", render: (w) => el("span.tags", (w.task_types || []).map((t) => el("code.chip-code", t))) },
  { render: (w) => slotsBar(w.leases_held || 0, w.slots || 0) },
  { cls: "num nowrap", render: (w) => el("span", { title: dateTime(w.last_heartbeat_at) }, relTime(w.last_heartbeat_at)) },
  { render: (w) => (w.draining ? tag("↓ draining", "warn") : tag("● active", "ok")) },
  { cls: "mono small", render: (w) => w.control_plane || "—" },
  { cls: "labels", render: (w) => el("span.tags", Object.entries(w.labels || {}).map(([k, v]) => el("span.tag", `${k}=${v}`))) },
];
