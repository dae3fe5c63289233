// Two runs side by side: every measure of the whole run and of each label, a against b.

import { get } from "../api.js";
import { h, link, number, table } from "../dom.js";

const MEASURES = ["samples", "rps", "error_rate", "mean", "p50", "p90", "p95", "p99"];

export async function comparePage(view, a, b) {
  const c = await get(`/api/runs/${a}/compare/${b}`);
  const cell = (change) => {
    if (!change) return "";
    const pct = change.percent === null ? "" : ` (${change.percent > 0 ? "+" : ""}` +
      `${number(change.percent, 1)} %)`;
    return `${number(change.a, 3)} → ${number(change.b, 3)}${pct}`;
  };
  const row = (r) => [r.label === null ? "whole run" : r.label,
    ...MEASURES.map((m) => cell(r.changes[m]))];
  view.append(
    h("h1", {}, "Comparison"),
    h("p", {}, "a: ", link(`#/runs/${a}`, a), " — b: ", link(`#/runs/${b}`, b)),
    table(["Label", ...MEASURES], [row(c.total), ...c.labels.map(row)], { class: "compare" }),
  );
}
