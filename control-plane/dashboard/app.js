// app.js: hash router and page lifecycle (mount/unmount, data-ready, nav highlighting, ticker).
import { clearAllErrors, clearFlash, tick } from "./components.js";
import { checkSession, showSignIn } from "./session.js";
import * as runs from "./pages/runs.js";
import * as run from "./pages/run.js";
import * as deadLetters from "./pages/dead_letters.js";
import * as workers from "./pages/workers.js";
import * as schedules from "./pages/schedules.js";
import * as queues from "./pages/queues.js";

const ROUTES = [
  { re: /^\/runs\/([^/]+)$/, page: "run", mod: run, nav: "#/runs", title: "Run" },
  { re: /^\/runs$/, page: "runs", mod: runs, nav: "#/runs", title: "Runs" },
  { re: /^\/dead-letters$/, page: "dead-letters", mod: deadLetters, nav: "#/dead-letters", title: "Failures" },
  { re: /^\/workers$/, page: "workers", mod: workers, nav: "#/workers", title: "Workers" },
  { re: /^\/schedules$/, page: "schedules", mod: schedules, nav: "#/schedules", title: "Schedules" },
  { re: /^\/queues$/, page: "queues", mod: queues, nav: "#/queues", title: "Queues" },
];

const main = document.getElementById("page");
// The skip link focuses the page; following "#page" would leave the current route.
document.getElementById("skip-link")?.addEventListener("click", (e) => { e.preventDefault(); main.focus(); });
let current = null; // {route, path, instance, ctx}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/runs";
  const [path, qs = ""] = raw.split("?");
  return { path: path.replace(/\/+$/, "") || "/runs", query: Object.fromEntries(new URLSearchParams(qs)) };
}

/** Sets the hash query of the current route (used by pages for filters). */
export function setQuery(params, { replace = false } = {}) {
  const { path } = parseHash();
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== "") q.set(k, v);
  const s = q.toString();
  const hash = `#${path}${s ? "?" + s : ""}`;
  if (hash === location.hash) return;
  if (replace) history.replaceState(null, "", hash);
  else location.hash = hash;
}

function route() {
  const { path, query } = parseHash();
  let match = null;
  let params = [];
  for (const r of ROUTES) {
    const m = path.match(r.re);
    if (m) { match = r; params = m.slice(1).map(decodeURIComponent); break; }
  }
  if (!match) { location.replace("#/runs"); return; }

  // Same page, only the query changed: let the page react without remounting.
  if (current && current.route === match && current.path === path && current.instance?.onQuery) {
    current.instance.onQuery(query);
    return;
  }
  unmount();
  clearAllErrors();
  clearFlash();
  main.dataset.page = match.page;
  main.removeAttribute("data-ready");
  main.removeAttribute("data-first-render-ms");
  main.replaceChildren();
  document.title = `${match.title} · Braid`;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === match.nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const controller = new AbortController();
  const ctx = {
    signal: controller.signal,
    controller,
    alive: () => !controller.signal.aborted,
    ready() {
      if (!controller.signal.aborted && main.dataset.ready !== "true") main.dataset.ready = "true";
    },
    setQuery,
  };
  current = { route: match, path, ctx, instance: null };
  try {
    current.instance = match.mod.mount(main, { params, query }, ctx) || null;
  } catch (e) {
    console.error(e);
  }
}

function unmount() {
  if (!current) return;
  current.ctx.controller.abort();
  try { current.instance?.unmount?.(); } catch (e) { console.error(e); }
  current = null;
}

/** Shows the sign-in form instead of the page; once signed in, the page the URL names. */
function signIn() {
  unmount();
  clearAllErrors();
  showSignIn(main, async () => { if (await checkSession()) checkSession().then((ok) => (ok ? route() : signIn()), () => route()); });
}

window.addEventListener("braid:unauthenticated", signIn);
window.addEventListener("hashchange", () => { if (main.dataset.page !== "sign-in") route(); });
document.getElementById("skip-link")?.addEventListener("click", (e) => { e.preventDefault(); main.focus(); });
setInterval(() => tick(main), 1000);
if (!location.hash || location.hash === "#" || location.hash === "#/") history.replaceState(null, "", "#/runs");
route();
