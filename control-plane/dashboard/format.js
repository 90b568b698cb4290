// format.js: formatting of times, relative times, durations, ids, byte sizes and compact JSON.

const pad = (n, w = 2) => String(n).padStart(w, "0");

/** Parses an RFC 3339 string (or null) into epoch milliseconds, or null. */
export function ms(iso) {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

/** "2026-11-30 16:40:52" in local time; "—" for null. */
export function dateTime(iso) {
  const t = ms(iso);
  if (t == null) return "—";
  const d = new Date(t);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "16:40:52.123" in local time (for timelines). */
export function clock(iso) {
  const t = ms(iso);
  if (t == null) return "—";
  const d = new Date(t);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** Short, human duration: "850 ms", "4.2 s", "3 m 04 s", "2 h 05 m", "3 d 4 h". */
export function duration(millis) {
  if (millis == null || Number.isNaN(millis)) return "—";
  const m = Math.max(0, millis);
  if (m < 1000) return `${Math.round(m)} ms`;
  if (m < 10_000) return `${(m / 1000).toFixed(1)} s`;
  const s = Math.floor(m / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} m ${pad(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} m`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** Duration between two RFC 3339 times; an open end counts up to now. */
export function span(startIso, endIso) {
  const a = ms(startIso);
  if (a == null) return "—";
  const b = endIso ? ms(endIso) : Date.now();
  return duration(b - a);
}

/** "3 s ago", "in 5 m", "just now". */
export function relative(iso, now = Date.now()) {
  const t = ms(iso);
  if (t == null) return "—";
  const diff = Math.round((t - now) / 1000);
  const abs = Math.abs(diff);
  if (abs < 1) return "just now";
  let txt;
  if (abs < 60) txt = `${abs} s`;
  else if (abs < 3600) txt = `${Math.floor(abs / 60)} m`;
  else if (abs < 86400) txt = `${Math.floor(abs / 3600)} h`;
  else txt = `${Math.floor(abs / 86400)} d`;
  return diff < 0 ? `${txt} ago` : `in ${txt}`;
}

/** First 8 characters of a UUID. */
export function shortId(id) {
  return id ? String(id).slice(0, 8) : "—";
}

/** "1.2 KiB" etc. */
export function bytes(n) {
  if (n == null) return "—";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** One-line JSON, cut to `max` characters. */
export function compactJson(v, max = 120) {
  if (v == null) return "";
  let s;
  try { s = typeof v === "string" ? v : JSON.stringify(v); } catch { s = String(v); }
  if (s === "{}" || s === "[]") return "";
  return s.length > max ? s.slice(0, max - 1) + "…" : s;
}

/** ISO string -> value for <input type=datetime-local> (local time), "" for null. */
export function toLocalInput(iso) {
  const t = ms(iso);
  if (t == null) return "";
  const d = new Date(t);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** <input type=datetime-local> value -> RFC 3339 UTC string, "" for empty. */
export function fromLocalInput(v) {
  if (!v) return "";
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}
