// api.js: JSON fetch helpers, API error type and Server-Sent-Events subscriptions.

export const EVENT_KINDS = [
  "run_created", "run_started", "run_succeeded", "run_failed", "run_cancelled", "run_resumed",
  "task_pending", "task_ready", "task_leased", "task_succeeded", "task_failed",
  "task_retry_scheduled", "task_skipped", "task_cancelled", "task_redriven", "dead_letter",
  "lease_expired",
];

export class ApiError extends Error {
  constructor(status, code, message, path) {
    super(message);
    this.status = status;
    this.code = code;
    this.path = path;
  }
}

/** Builds "?a=1&b=2", dropping empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v == null || v === "" || (Array.isArray(v) && v.length === 0)) continue;
    q.set(k, Array.isArray(v) ? v.join(",") : String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

async function request(method, path, body, signal) {
  let res;
  try {
    res = await fetch(path, {
      method,
      signal,
      headers: body !== undefined ? { "content-type": "application/json", accept: "application/json" } : { accept: "application/json" },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "unavailable", `Cannot reach the control plane (${e.message})`, path);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (res.status === 401) window.dispatchEvent(new CustomEvent("braid:unauthenticated"));
  if (!res.ok) {
    const err = data && data.error;
    throw new ApiError(res.status, err?.code || "internal",
      err?.message || `${method} ${path} failed: HTTP ${res.status}${text && !data ? ` — ${text.slice(0, 200)}` : ""}`, path);
  }
  return data ?? {};
}

export const get = (path, params, signal) => request("GET", path + query(params), undefined, signal);
export const post = (path, body = {}, signal) => request("POST", path, body, signal);

/**
 * Opens an EventSource and routes every known event kind to onEvent(data, kind, lastEventId).
 * Returns the EventSource; callers close it.
 */
export function subscribe(url, { onEvent, onError, onOpen } = {}) {
  const es = new EventSource(url);
  for (const kind of EVENT_KINDS) {
    es.addEventListener(kind, (ev) => {
      let data = null;
      try { data = JSON.parse(ev.data); } catch { data = { kind }; }
      if (data && !data.kind) data.kind = kind;
      onEvent?.(data, kind, ev.lastEventId);
    });
  }
  if (onError) es.addEventListener("error", (ev) => onError(ev, es));
  if (onOpen) es.addEventListener("open", (ev) => onOpen(ev, es));
  return es;
}

/** Returns a function that runs fn at most once per `wait` ms (trailing call guaranteed). */
export function throttle(fn, wait = 500) {
  let last = 0;
  let timer = null;
  const run = () => { timer = null; last = Date.now(); fn(); };
  const t = () => {
    if (timer) return;
    const delay = Math.max(0, last + wait - Date.now());
    timer = setTimeout(run, delay);
  };
  t.cancel = () => { if (timer) clearTimeout(timer); timer = null; };
  return t;
}
