// A collection: its config, its plans' engines, the four buttons the status allows, the
// deployment's and the run's progress, the time left before idle engines are purged, every
// engine's state and logs, and its runs.

import { all, get, post, put } from "../api.js";
import { h, link, notice, number, runVerdict, table, when } from "../dom.js";

const POLL_MS = 2000;

export async function collectionPage(view, id) {
  const collection = await get(`/api/collections/${id}`);
  const project = await get(`/api/projects/${collection.project_id}`);
  const buttons = {
    deploy: h("button", { type: "button", id: "deploy" }, "Launch"),
    trigger: h("button", { type: "button", id: "trigger" }, "Trigger"),
    stop: h("button", { type: "button", id: "stop" }, "Stop"),
    purge: h("button", { type: "button", id: "purge" }, "Purge"),
  };
  const message = h("p", { class: "status", role: "status" });
  const progress = h("div", { id: "progress" });
  const engines = h("div", { id: "engines" });
  const runs = h("div", { id: "runs" });
  const act = (button, path, body) => button.addEventListener("click", async () => {
    message.replaceChildren();
    for (const b of Object.values(buttons)) b.disabled = true;
    try {
      const out = await post(path(), body);
      if (out && out.id && String(out.id).startsWith("run-")) location.hash = `#/runs/${out.id}`;
    } catch (err) {
      message.replaceChildren(notice(err.message));
    }
    await refresh();
  });
  let status = null;
  let shown = "";
  const picked = []; // the runs selected for a comparison
  act(buttons.deploy, () => `/api/collections/${id}/deploy`, {});
  act(buttons.trigger, () => `/api/collections/${id}/runs`, {});
  act(buttons.stop, () => `/api/runs/${status.run_id}/stop`, { reason: "stopped from the UI" });
  act(buttons.purge, () => `/api/collections/${id}/purge`, { reason: "purged from the UI" });

  async function refresh() {
    try {
      status = await get(`/api/collections/${id}/status`);
    } catch (err) {
      message.replaceChildren(notice(err.message));
      return;
    }
    const launched = status.launch && !status.launch.purged_at;
    const planned = collection.plans.length > 0;
    buttons.deploy.disabled = !planned || launched;
    buttons.trigger.disabled = !planned || Boolean(status.run_id);
    buttons.stop.disabled = !status.run_id;
    buttons.purge.disabled = !launched || Boolean(status.run_id);
    progress.replaceChildren(...status.plans.map((p) => planProgress(p)),
      status.run_id ? h("p", {}, "Run in progress: ", link(`#/runs/${status.run_id}`, status.run_id))
        : h("p", { class: "muted" }, launched ? "Engines deployed, no run in progress."
          : "Not deployed."), purgeNotice(status));
    engines.replaceChildren(engineTable(id, status.engines));
    const history = await all(`/api/collections/${id}/runs`);
    const seen = JSON.stringify(history);
    if (seen !== shown) { // redrawn only when it changed: a selection survives the polls
      shown = seen;
      runs.replaceChildren(runTable(history, picked));
    }
  }

  view.append(
    h("p", { class: "crumbs" }, link("#/", "Projects"), " / ",
      link(`#/projects/${project.id}`, project.name), " / ", collection.name),
    h("h1", {}, collection.name),
    h("div", { class: "actions" }, Object.values(buttons)),
    message,
    h("section", {}, h("h2", {}, "Plans"), planTable(collection)),
    h("section", {}, h("h2", {}, "Progress"), progress),
    h("section", {}, h("h2", {}, "Engines"), engines),
    h("section", {}, h("h2", {}, "Runs"), runs),
    h("section", {}, h("h2", {}, "Config"), await configEditor(id)),
  );
  await refresh();
  const timer = setInterval(refresh, POLL_MS);
  return () => clearInterval(timer);
}

function planTable(c) {
  if (!c.plans.length) return h("p", { class: "muted" }, "No plan yet: add one in the config.");
  return table(["Plan", "Engine", "Engines", "Users per engine", "Ramp-up (s)", "Duration (s)"],
    c.plans.map((p) => [`${p.name} (plan ${p.plan_id})`, p.engine, number(p.engines),
      p.users === null ? number(p.threads_per_engine) : `${number(p.users)} in all`,
      number(p.ramp_up_s), number(p.duration_s)]));
}

function planProgress(p) {
  const bar = (value, max, label) => h("label", { class: "bar" }, `${label} ${value} of ${max}`,
    h("progress", { value, max: Math.max(max, 1) }));
  return h("div", { class: "plan-progress" }, h("strong", {}, p.name),
    bar(p.deployed, p.engines, "deployed"), bar(p.ready + p.running, p.engines, "heard from"),
    bar(p.running, p.engines, "running"));
}

/** How long idle engines have before the stream purges them (refreshed with the status). */
function purgeNotice(status) {
  if (!status.purge_at || status.run_id) return "";
  const left = Math.max(0, Math.round((Date.parse(status.purge_at) - Date.now()) / 1000));
  const text = left >= 60 ? `${Math.floor(left / 60)} min ${left % 60} s` : `${left} s`;
  return h("p", { id: "purge-at", title: status.purge_at },
    `Idle engines are purged in ${text} unless a run starts.`);
}

function engineTable(collection, engines) {
  if (!engines.length) return h("p", { class: "muted" }, "No engine.");
  return table(["Engine", "Phase", "State", "Heard", "Threads", "CPU (cores)", "Memory (MiB)",
    "Logs"], engines.map((e) => [e.engine_id, e.phase || "unknown",
    e.state || "not heard", when(e.heard_at), number(e.threads), number(e.cpu_cores, 2),
    e.memory_bytes === null ? "" : number(e.memory_bytes / 2 ** 20),
    h("a", { href: `/api/collections/${collection}/engines/${e.plan_id}/${e.index}/logs`,
      target: "_blank", rel: "noopener" }, "logs")]), { class: "engines" });
}

function runTable(runs, picked) {
  if (!runs.length) return h("p", { class: "muted" }, "No run yet.");
  const compare = h("button", { type: "button", disabled: picked.length !== 2, onclick: () => {
    location.hash = `#/compare/${picked[0]}/${picked[1]}`;
  } }, "Compare the two selected");
  const pick = (id) => h("input", { type: "checkbox", "aria-label": `select ${id}`,
    checked: picked.includes(id), onchange: (e) => {
      if (e.target.checked) picked.push(id); else picked.splice(picked.indexOf(id), 1);
      compare.disabled = picked.length !== 2;
    } });
  return h("div", {}, table(["", "Run", "Started", "Outcome", "Verdict", "Samples", "Failures",
    "Reason"], runs.map((r) => [pick(r.id), link(`#/runs/${r.id}`, r.id), when(r.started_at),
    r.outcome || r.state, runVerdict(r), number(r.samples), number(r.failures), r.reason])),
  compare);
}

async function configEditor(id) {
  const text = h("textarea", { id: "config", rows: 16, spellcheck: "false" });
  text.value = await get(`/api/collections/${id}/config`);
  const out = h("p", { class: "status", role: "status" });
  const save = h("button", { type: "button", onclick: async () => {
    out.replaceChildren();
    try {
      await put(`/api/collections/${id}/config`, text.value, "application/yaml");
      out.replaceChildren(h("span", { class: "ok" }, "Saved."));
      location.reload();
    } catch (err) {
      out.replaceChildren(notice(err.message));
    }
  } }, "Save config");
  return h("div", {}, h("p", { class: "hint" }, "Shibuya's multi-test YAML: each test is a plan ",
    "of this project with its engines, concurrency, ramp-up and duration."), text, save, out);
}
