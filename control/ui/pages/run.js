// A run, live while it goes: per-second charts fed by the API's event streams (the run's, and
// the picked label's): provisional rows of the seconds still open, replaced by each second's
// final row; a stream resumes after a dropped connection where it left off (the browser sends
// Last-Event-ID). Its status, its criteria's verdicts and its labels; then its report.

import { get, post } from "../api.js";
import { h, link, notice, number, runVerdict, table, verdictBadge } from "../dom.js";
import { LiveCharts } from "../charts.js";

const LABELS_EVERY_MS = 2000;
const SETTLE_MS = 60000; // after the end, how long the labels wait for the run's last rows

export async function runPage(view, id) {
  let run = await get(`/api/runs/${id}`);
  const summary = h("div", { id: "summary" });
  const verdicts = h("div", { id: "verdicts" });
  const labels = h("div", { id: "labels" });
  const message = h("p", { class: "status", role: "status" });
  const stop = h("button", { type: "button", id: "stop", onclick: async () => {
    try {
      await post(`/api/runs/${id}/stop`, { reason: "stopped from the UI" });
    } catch (err) {
      message.replaceChildren(notice(err.message));
    }
  } }, "Stop");
  const chartBox = h("div", { id: "charts" });
  const labelBox = h("div", { id: "label-charts" });
  const pick = h("select", { id: "label-pick", "aria-label": "label" });
  view.append(
    h("p", { class: "crumbs" }, link(`#/collections/${run.collection_id}`,
      `Collection ${run.collection_id}`), " / ", id),
    h("h1", {}, `Run ${id}`),
    h("p", { class: "muted", id: "plan-engines" }, Object.entries(run.plan_engines || {})
      .map(([plan, engine]) => `plan ${plan}: ${engine}`).join(" · ")),
    h("div", { class: "actions" }, stop,
      h("a", { class: "button", href: `/api/runs/${id}/report.html`, target: "_blank",
        rel: "noopener", id: "report" }, "Report")),
    message, summary,
    h("section", {}, h("h2", {}, "Verdicts"), verdicts),
    h("section", {}, h("h2", {}, "Over time"), chartBox),
    h("section", {}, h("h2", {}, "Labels"), labels),
    h("section", {}, h("h2", {}, "One label over time"), pick, labelBox),
  );
  const charts = new LiveCharts(chartBox, "live");
  const labelCharts = new LiveCharts(labelBox, "label");
  let labelStream = null; // the picked label's live stream
  const followLabel = () => {
    if (labelStream) labelStream.close();
    labelCharts.clear();
    labelStream = pick.value ? follow(id, pick.value, labelCharts, () => {}) : null;
  };
  pick.addEventListener("change", followLabel);
  let endedAt = null;
  let settled = false; // the report holds every sample the run counted
  const show = (r) => {
    run = r;
    if (r.outcome !== null && endedAt === null) endedAt = Date.now();
    stop.disabled = r.outcome !== null;
    summary.replaceChildren(table(["State", "Outcome", "Verdict", "Samples", "Failures",
      "Engines", "Reason"], [[r.state, r.outcome || "", runVerdict(r), number(r.samples),
      number(r.failures), Object.entries(r.engines).map(([k, v]) => `${k} ${v}`).join(", "),
      r.reason]]));
    verdicts.replaceChildren(verdictTable(r.criteria));
  };
  const refreshLabels = async () => {
    try {
      const report = await get(`/api/runs/${id}/report`);
      labels.replaceChildren(labelTable(report));
      settled = report.run.outcome !== null && (report.total?.samples ?? 0) >= report.run.samples;
      const known = new Set([...pick.options].map((o) => o.value));
      for (const l of report.labels) {
        if (!known.has(l.label)) pick.append(h("option", { value: l.label }, l.label));
      }
      if (!known.size && pick.options.length) followLabel();
    } catch (err) {
      labels.replaceChildren(notice(err.message));
    }
  };
  show(run);
  await refreshLabels();
  // The report is read from the store, which the run's last rows reach after its end.
  const timer = setInterval(() => {
    if (run.outcome === null || (!settled && Date.now() - endedAt < SETTLE_MS)) refreshLabels();
  }, LABELS_EVERY_MS);
  const stream = follow(id, null, charts, (kind, r) => {
    show(r);
    if (kind === "end") refreshLabels();
  });
  stream.addEventListener("error", () => {
    if (stream.readyState === EventSource.CLOSED && run.outcome === null) {
      message.replaceChildren(notice("the live stream closed: reload the page to resume"));
    }
  });
  return () => {
    stream.close();
    if (labelStream) labelStream.close();
    clearInterval(timer);
    charts.destroy();
    labelCharts.destroy();
  };
}

/** The live stream of a run (or of one of its labels) into charts; ``onRun(kind, run)`` hears
 * the run's status and end. */
function follow(id, label, charts, onRun) {
  const q = label === null ? "" : `?label=${encodeURIComponent(label)}`;
  const stream = new EventSource(`/api/runs/${id}/live${q}`);
  const put = (e) => charts.put(JSON.parse(e.data));
  stream.addEventListener("second", put);
  stream.addEventListener("provisional", put);
  stream.addEventListener("status", (e) => onRun("status", JSON.parse(e.data)));
  stream.addEventListener("end", (e) => {
    stream.close();
    onRun("end", JSON.parse(e.data));
  });
  return stream;
}

function verdictTable(criteria) {
  if (!criteria.length) return h("p", { class: "muted" }, "No criteria: nothing to pass or fail.");
  return table(["Criterion", "Verdict", "Value", "Threshold", "Seconds judged", "Note"],
    criteria.map((c) => [c.criterion, verdictBadge(c.passed), number(c.value, 3),
      number(c.threshold, 3), number(c.seconds), c.error || c.note]));
}

function labelTable(report) {
  const rows = report.labels.map((l) => [l.label, number(l.samples), number(l.failures),
    `${number(100 * l.error_rate, 2)} %`, number(l.rps, 1), number(l.elapsed_mean_ms, 1),
    number(l.elapsed.p50, 1), number(l.elapsed.p90, 1), number(l.elapsed.p95, 1),
    number(l.elapsed.p99, 1)]);
  if (!rows.length) return h("p", { class: "muted" }, "No sample yet.");
  return table(["Label", "Samples", "Failures", "Errors", "Rate (/s)", "Mean (ms)", "p50", "p90",
    "p95", "p99"], rows, { class: "labels" });
}
