// components.js: DOM helpers and shared widgets (badges, progress bars, keyed tables, dialogs, flash, error banner, blobs).
import { bytes, relative, span } from "./format.js";

/** Hyperscript: el("a.cls", {href, dataset, on: {click}}, ...children). */
export function el(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const node = document.createElement(name || "div");
  if (classes.length) node.className = classes.join(" ");
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "class") node.className += (node.className ? " " : "") + v;
    else if (k === "text") node.textContent = v;
    else if (k in node && typeof v !== "string") node[k] = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces all children of node. */
export function setChildren(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

export const STATES = {
  queued: { icon: "‖", label: "queued" },
  running: { icon: "●", label: "running" },
  succeeded: { icon: "✓", label: "succeeded" },
  failed: { icon: "✕", label: "failed" },
  cancelled: { icon: "⊘", label: "cancelled" },
  skipped: { icon: "↷", label: "skipped" },
  pending: { icon: "…", label: "pending" },
  ready: { icon: "◷", label: "ready" },
  leased: { icon: "▶", label: "leased" },
  lost: { icon: "?", label: "lost" },
};
export const RUN_STATES = ["queued", "running", "succeeded", "failed", "cancelled"];
export const TASK_STATES = ["pending", "ready", "leased", "succeeded", "failed", "cancelled", "skipped"];
export const TERMINAL_RUN = new Set(["succeeded", "failed", "cancelled"]);

export function stateIcon(state) {
  return (STATES[state] || { icon: "•" }).icon;
}

/** <span class="badge" data-state="failed">✕ failed</span> */
export function badge(state, extra = {}) {
  const b = el("span.badge", extra);
  setBadge(b, state);
  return b;
}

export function setBadge(b, state) {
  const s = state || "unknown";
  if (b.dataset.state === s && b.childNodes.length) return b;
  b.dataset.state = s;
  const meta = STATES[s] || { icon: "•", label: s };
  setChildren(b, el("span.badge-icon", { "aria-hidden": "true" }, meta.icon), el("span.badge-label", meta.label));
  return b;
}

/** A neutral tag, e.g. tag("draining", "warn"). */
export function tag(text, kind = "") {
  return el(`span.tag${kind ? "." + kind : ""}`, text);
}

/** A stacked progress bar of task counts. */
export function progressBar(counts) {
  const order = ["succeeded", "failed", "leased", "ready", "pending", "skipped", "cancelled"];
  const total = order.reduce((a, k) => a + (counts?.[k] || 0), 0);
  const bar = el("span.progress", { role: "img" });
  const parts = [];
  for (const k of order) {
    const n = counts?.[k] || 0;
    if (!n) continue;
    parts.push(`${n} ${k}`);
    bar.append(el("span.seg", { dataset: { state: k }, style: `width:${(100 * n) / total}%` }));
  }
  const done = (counts?.succeeded || 0) + (counts?.failed || 0) + (counts?.skipped || 0) + (counts?.cancelled || 0);
  bar.setAttribute("aria-label", parts.join(", ") || "no tasks");
  bar.title = parts.join(", ") || "no tasks";
  return el("span.progress-wrap", bar, el("span.progress-text.num", `${done}/${total}`),
    counts?.failed ? el("span.progress-failed.num", `${counts.failed} ✕`) : null);
}

/** A slots bar: used of total. */
export function slotsBar(used, total) {
  const pct = total ? Math.min(100, (100 * used) / total) : 0;
  return el("span.progress-wrap",
    el("span.progress.slots", { role: "img", "aria-label": `${used} of ${total} slots used`, title: `${used} of ${total} slots used` },
      el("span.seg", { dataset: { state: pct >= 100 ? "full" : "used" }, style: `width:${pct}%` })),
    el("span.progress-text.num", `${used}/${total}`));
}

/** A <time> that the ticker keeps as "3 s ago". */
export function relTime(iso) {
  return el("time.rel.num", { datetime: iso || "", title: iso || "", dataset: { rel: iso || "" } }, relative(iso));
}

/** A duration that keeps counting while `end` is null. */
export function liveSpan(start, end) {
  const node = el("span.num", span(start, end));
  if (start && !end) node.dataset.liveStart = start;
  return node;
}

/** Refreshes every relative time and live duration inside root. */
export function tick(root = document) {
  const now = Date.now();
  for (const n of root.querySelectorAll("[data-rel]")) {
    const t = relative(n.dataset.rel, now);
    if (n.textContent !== t) n.textContent = t;
  }
  for (const n of root.querySelectorAll("[data-live-start]")) {
    const t = span(n.dataset.liveStart, null);
    if (n.textContent !== t) n.textContent = t;
  }
}

/**
 * Reconciles <tbody> rows by key without rebuilding unchanged rows.
 * columns: [{render(item) -> Node|string, cls?}]; rowAttrs(item) -> {dataset..., class}.
 */
export function syncRows(tbody, items, keyFn, columns, rowAttrs = () => ({})) {
  const existing = new Map();
  for (const tr of tbody.querySelectorAll(":scope > tr[data-key]")) existing.set(tr.dataset.key, tr);
  for (const tr of tbody.querySelectorAll(":scope > tr:not([data-key])")) tr.remove();
  let prev = null;
  const seen = new Set();
  for (const item of items) {
    const key = String(keyFn(item));
    seen.add(key);
    let tr = existing.get(key);
    if (!tr) {
      tr = el("tr", { dataset: { key } });
      for (const c of columns) tr.append(el("td", { class: c.cls || null }));
    }
    const attrs = rowAttrs(item);
    for (const [k, v] of Object.entries(attrs.dataset || {})) if (tr.dataset[k] !== String(v)) tr.dataset[k] = v;
    if (attrs.class != null && tr.className !== attrs.class) tr.className = attrs.class;
    columns.forEach((c, i) => {
      const td = tr.children[i];
      const tmp = el("td");
      append(tmp, [c.render(item)]);
      if (td.innerHTML !== tmp.innerHTML) td.replaceChildren(...tmp.childNodes);
    });
    const want = prev ? prev.nextSibling : tbody.firstChild;
    if (want !== tr) tbody.insertBefore(tr, want);
    prev = tr;
  }
  for (const [key, tr] of existing) if (!seen.has(key)) tr.remove();
}

/** A table skeleton: returns {wrap, table, tbody}. Header "Count:num" is right-aligned. */
export function table(headers, { caption, cls } = {}) {
  const tbody = el("tbody");
  const t = el("table", { class: cls || null },
    caption ? el("caption.sr-only", caption) : null,
    el("thead", el("tr", headers.map((h) => (typeof h === "string"
      ? (h.endsWith(":num") ? el("th.num", { scope: "col" }, h.slice(0, -4)) : el("th", { scope: "col" }, h))
      : h)))),
    tbody);
  const wrap = el("div.table-wrap", t);
  return { wrap, table: t, tbody };
}

/** A row spanning the table, used for empty states and loading placeholders. */
export function placeholderRow(tbody, colspan, content, kind = "empty") {
  const tr = el("tr.placeholder", el("td", { colspan: String(colspan) }, el(`div.${kind}`, content)));
  tbody.replaceChildren(tr);
}

export function emptyState(title, hint) {
  return el("div.empty", el("strong", title), hint ? el("p", hint) : null);
}

/** Renders a hint that may contain `code` spans written with backticks. */
export function hintText(s) {
  return s.split(/(`[^`]+`)/).map((p) => (p.startsWith("`") ? el("code", p.slice(1, -1)) : p));
}

/** Confirmation dialog. Resolves true on confirm, false on dismiss/Escape. */
export function confirmDialog({ title, body, confirmLabel = "Confirm", danger = false }) {
  return new Promise((resolve) => {
    const confirmBtn = el(`button.btn${danger ? ".danger" : ".primary"}`, { type: "button", dataset: { action: "confirm" } }, confirmLabel);
    const dismissBtn = el("button.btn", { type: "button", dataset: { action: "dismiss" } }, "Cancel");
    const dlg = el("dialog.dialog", { "aria-labelledby": "dlg-title" },
      el("h2", { id: "dlg-title" }, title),
      el("div.dialog-body", typeof body === "string" ? el("p", body) : body),
      el("div.dialog-actions", dismissBtn, confirmBtn));
    let done = false;
    const finish = (v) => {
      if (done) return;
      done = true;
      if (dlg.open) dlg.close();
      dlg.remove();
      resolve(v);
    };
    confirmBtn.addEventListener("click", () => finish(true));
    dismissBtn.addEventListener("click", () => finish(false));
    dlg.addEventListener("cancel", (e) => { e.preventDefault(); finish(false); });
    dlg.addEventListener("close", () => finish(false));
    document.body.append(dlg);
    dlg.showModal();
    confirmBtn.focus();
  });
}

/** Shows a single flash message (replacing the previous one). kind: ok|error|info. */
export function flash(content, kind = "ok", ttl = 20000) {
  const host = document.getElementById("flash-host");
  if (!host) return;
  const close = el("button.flash-close", { type: "button", "aria-label": "Dismiss message" }, "×");
  const msg = el(`div.flash.${kind}`, { role: kind === "error" ? "alert" : "status", dataset: { testid: "flash" } },
    el("span.flash-text", content), close);
  close.addEventListener("click", () => msg.remove());
  host.replaceChildren(msg);
  if (ttl) setTimeout(() => msg.remove(), ttl);
}

export function clearFlash() {
  document.getElementById("flash-host")?.replaceChildren();
}

const banners = new Map();

/** Shows an API error in the banner; `key` lets a later success clear it. */
export function showError(err, key = "default") {
  if (err?.name === "AbortError") return;
  const host = document.getElementById("banner-host");
  if (!host) return;
  const text = err?.code && err.code !== "internal" && err.status
    ? `${err.message} (${err.code}, HTTP ${err.status})`
    : err?.message || String(err);
  let b = banners.get(key);
  if (!b) {
    const close = el("button.flash-close", { type: "button", "aria-label": "Dismiss error" }, "×");
    b = el("div.banner", { role: "alert", dataset: { testid: "error-banner" } }, el("span.banner-icon", { "aria-hidden": "true" }, "⚠"), el("span.banner-text"), close);
    close.addEventListener("click", () => clearError(key));
    banners.set(key, b);
    host.append(b);
  }
  b.querySelector(".banner-text").textContent = text;
  console.error("[braid]", text);
}

export function clearError(key = "default") {
  const b = banners.get(key);
  if (b) { b.remove(); banners.delete(key); }
}

export function clearAllErrors() {
  for (const k of [...banners.keys()]) clearError(k);
}

/** Shows a Blob: size, pretty JSON in a collapsible <details>, and download links. */
export function blobView(blob, { label = "JSON", open = false, download } = {}) {
  if (!blob) return el("p.muted", "—");
  const dl = blob.download || download;
  return el("details.blob", { open },
    el("summary", el("span", label), el("span.muted.num", ` ${bytes(blob.size)}`),
      blob.truncated ? el("span.tag.warn", "truncated") : null),
    el("pre.json", blob.text ?? ""),
    dl ? el("p.blob-links", blob.stored ? "Kept in object storage. " : blob.truncated ? "Showing the first 64 KiB. " : "",
      el("a", { href: dl, download: "" }, blob.truncated ? "Download full" : "Download")) : null);
}

/** Error object view: message, type, retryable, details. */
export function errorView(err) {
  if (!err) return null;
  return el("div.error-box",
    el("div.error-head", el("span.tag.bad", err.type || "error"), err.retryable ? el("span.tag", "retryable") : el("span.tag", "not retryable")),
    el("p.error-msg", err.message || "(no message)"),
    err.details != null ? el("details", el("summary", "Details"),
      el("pre.json", typeof err.details === "string" ? err.details : JSON.stringify(err.details, null, 2))) : null);
}

/** Fills a <select> with options (keeps the current value when possible). */
export function fillSelect(select, options, value) {
  const cur = value ?? select.value;
  select.replaceChildren(...options.map(([v, label]) => el("option", { value: v }, label)));
  select.value = options.some(([v]) => v === cur) ? cur : options[0]?.[0] ?? "";
}

/** Sets the top-bar live indicator: on | reconnecting | done (a finished run) | poll | off. */
export function setLive(state) {
  const n = document.getElementById("live-indicator");
  if (!n) return;
  n.dataset.live = state;
  const text = { on: "live", reconnecting: "reconnecting…", done: "run finished", poll: "auto-refresh", off: "not live" };
  n.querySelector(".live-text").textContent = text[state] ?? "not live";
}

/** Calls fn now and then every `ms` while the page is alive (never overlapping). Returns a stop function. */
export function poll(fn, ms, ctx) {
  let timer = null;
  let stopped = false;
  setLive("poll");
  const loop = async () => {
    if (stopped || !ctx.alive()) return;
    try { await fn(); } finally {
      if (!stopped && ctx.alive()) timer = setTimeout(loop, ms);
    }
  };
  loop();
  return () => { stopped = true; clearTimeout(timer); setLive("off"); };
}
