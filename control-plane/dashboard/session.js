// session.js: who the dashboard acts as (GET /api/v1/session), the sign-in form that keeps a token in the server's cookie, and signing out.
import { el } from "./components.js";

/** Asks who we are; shows it in the top bar. Returns false when a sign-in is needed. */
export async function checkSession() {
  const res = await fetch("/api/v1/session", { headers: { accept: "application/json" } });
  const host = document.getElementById("whoami");
  if (res.status === 401) {
    host?.replaceChildren();
    return false;
  }
  const me = await res.json().catch(() => ({}));
  if (host) {
    host.replaceChildren(
      el("span.who", { title: `role ${me.role}` }, me.auth === "off" ? "auth off" : `${me.tenant} · ${me.role}`),
      me.auth === "on" ? el("button.linkish.signout", { type: "button", dataset: { action: "sign-out" }, on: { click: signOut } }, "Sign out") : null);
  }
  return true;
}

async function signOut() {
  await fetch("/api/v1/session", { method: "DELETE" });
  window.dispatchEvent(new CustomEvent("braid:unauthenticated"));
}

/** Renders the sign-in form into `main`; calls `done()` once a token was accepted. */
export function showSignIn(main, done) {
  main.dataset.page = "sign-in";
  document.title = "Sign in · Braid";
  const input = el("input", { id: "token", type: "password", name: "token", autocomplete: "off", required: true, placeholder: "brd_…", "aria-describedby": "token-help" });
  const error = el("p.error-msg", { dataset: { testid: "sign-in-error" }, role: "alert" });
  const form = el("form.card.sign-in", { on: { submit: async (e) => {
    e.preventDefault();
    error.textContent = "";
    const res = await fetch("/api/v1/session", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ token: input.value }),
    }).catch((err) => ({ ok: false, json: async () => ({ error: { message: err.message } }) }));
    if (res.ok) { input.value = ""; done(); return; }
    const body = await res.json().catch(() => ({}));
    error.textContent = body?.error?.message || "The token was not accepted.";
  } } },
    el("h1", "Sign in"),
    el("label", { for: "token" }, "API token"),
    input,
    el("p.muted", { id: "token-help" }, "A token of your tenant (any role but worker). ", el("code", "braid dev"), " prints one; operators make them with ",
      el("code", "braid admin token create"), ". It is kept in an HttpOnly cookie of this site."),
    error,
    el("button.btn.primary", { type: "submit", dataset: { action: "sign-in" } }, "Sign in"));
  main.replaceChildren(form);
  main.dataset.ready = "true";
  input.focus();
}
