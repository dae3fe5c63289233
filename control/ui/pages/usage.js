// What runs now (every group's for an admin: the admin page), and usage per project.

import { get } from "../api.js";
import { h, link, number, table, when } from "../dom.js";

export async function runningPage(view) {
  const running = await get("/api/running");
  view.append(h("h1", {}, "Running"), running.length
    ? table(["Project", "Group", "Collection", "Engines", "Virtual users", "Launched", "Run"],
      running.map((r) => [link(`#/projects/${r.project_id}`, r.project), r.group,
        link(`#/collections/${r.collection_id}`, r.collection), number(r.engines),
        number(r.virtual_users), when(r.launched_at),
        r.run_id ? h("span", {}, link(`#/runs/${r.run_id}`, r.run_id), ` ${r.run_state}`) : ""]),
      { id: "running" })
    : h("p", { class: "muted" }, "Nothing deployed, nothing running."));
}

export async function usagePage(view) {
  const u = await get("/api/usage");
  view.append(
    h("h1", {}, "Usage"),
    h("p", { class: "muted" }, `${when(u.since)} to ${when(u.until)}: ` +
      `${number(u.engine_hours, 2)} engine-hours, ${number(u.virtual_user_hours, 1)} ` +
      "virtual-user-hours."),
    u.projects.length
      ? table(["Project", "Group", "Launches", "Engine-hours", "Virtual-user-hours", "Runs"],
        u.projects.map((p) => [link(`#/projects/${p.project_id}`, p.project), p.group,
          number(p.launches), number(p.engine_hours, 2), number(p.virtual_user_hours, 1),
          number(p.runs)]), { id: "usage" })
      : h("p", { class: "muted" }, "No usage in this period."),
  );
}
