// The web UI: who is logged in, the pages by address (#/...), and the header.

import { ApiError, get, post, useCsrf } from "./api.js";
import { form, h, input, link, notice } from "./dom.js";
import { collectionPage } from "./pages/collection.js";
import { comparePage } from "./pages/compare.js";
import { projectPage, projectsPage } from "./pages/projects.js";
import { runPage } from "./pages/run.js";
import { runningPage, usagePage } from "./pages/usage.js";

const ROUTES = [
  [/^#?\/?$/, projectsPage],
  [/^#\/projects\/(\d+)$/, projectPage],
  [/^#\/collections\/(\d+)$/, collectionPage],
  [/^#\/runs\/(run-[0-9a-f]+)$/, runPage],
  [/^#\/compare\/(run-[0-9a-f]+)\/(run-[0-9a-f]+)$/, comparePage],
  [/^#\/running$/, runningPage],
  [/^#\/usage$/, usagePage],
];

const view = document.getElementById("view");
let leave = null; // what the current page stops when another one is shown (streams, timers)
let me = null;
let info = { sso: false }; // what the server says before anyone logs in

async function show() {
  if (leave) leave();
  leave = null;
  view.replaceChildren();
  if (!me) return loginPage();
  const hash = location.hash || "#/";
  for (const [pattern, page] of ROUTES) {
    const m = hash.match(pattern);
    if (!m) continue;
    try {
      leave = (await page(view, ...m.slice(1))) || null;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return signedOut();
      view.replaceChildren(notice(err.message));
    }
    return;
  }
  view.replaceChildren(notice(`no page at ${hash}`));
}

function header() {
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  nav.replaceChildren(...(me ? [link("#/", "Projects"), link("#/running", "Running"),
    link("#/usage", "Usage")] : []));
  who.replaceChildren();
  if (!me) return;
  who.append(h("span", { class: "user" }, me.name + (me.is_admin ? " (admin)" : "")));
  if (me.auth !== "none") {
    who.append(h("button", { type: "button", class: "link", onclick: logout }, "Log out"));
  }
}

function loginPage() {
  view.append(
    h("h1", {}, "Log in"),
    info.sso ? h("p", {}, h("a", { class: "button", href: "/ui/oidc/login", id: "sso" },
      "Log in with single sign-on")) : null,
    form([input("token", "API token", { type: "password", autocomplete: "off", required: true })],
      "Log in", async ({ token }) => signedIn(await post("/ui/login", { token })),
      { id: "login" }),
    h("p", { class: "hint" }, "An API token comes from ", h("code", {}, "shibuya api token NAME"),
      " (or ", h("code", {}, "add-user"), "). The page keeps a session cookie, not the token."),
  );
}

function signedIn(session) {
  me = session;
  useCsrf(session.csrf);
  header();
  show();
}

function signedOut() {
  me = null;
  useCsrf("");
  header();
  show();
}

async function logout() {
  try {
    await post("/ui/logout");
  } finally {
    signedOut();
  }
}

async function start() {
  try {
    info = await get("/ui/session");
    if (info.name === null) signedOut(); else signedIn(info);
  } catch (err) {
    signedOut();
    view.prepend(notice(err.message));
  }
  window.addEventListener("hashchange", show);
}

start();
