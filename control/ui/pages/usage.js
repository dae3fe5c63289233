// Engine usage per project (the caller's; every project for an admin).

import { get } from "../api.js";
import { h, number, table } from "../dom.js";

export async function usagePage(view) {
  const usage = await get("/api/usage");
  const items = usage.items || usage;
  const keys = items.length ? Object.keys(items[0]) : [];
  view.append(h("h1", {}, "Usage"), items.length
    ? table(keys, items.map((u) => keys.map((k) => (typeof u[k] === "number" ? number(u[k], 1)
      : String(u[k] ?? "")))))
    : h("p", { class: "muted" }, "No usage yet."));
}
