// The charts of a run's HTML report (control/results/html.py inlines this file, uPlot and the
// run's data). Everything the page shows comes from the JSON in #report-data; text reaches the
// page through textContent only. window.shibuyaCharts holds each chart (its .data), for tests.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const charts = {};
  window.shibuyaCharts = charts;
  const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf"];

  function width() {
    return Math.max(320, Math.min(1100, document.body.clientWidth - 48));
  }

  function draw(id, title, unit, names, xs, ys) {
    const el = document.getElementById(id);
    if (!el) return;
    if (charts[id]) {
      charts[id].destroy();
      delete charts[id];
    }
    el.textContent = "";
    if (!xs.length) {
      el.textContent = "no data";
      return;
    }
    const series = [{}].concat(names.map(function (name, i) {
      return { label: name, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false };
    }));
    const opts = {
      title: title, width: width(), height: 260,
      scales: { x: { time: true } },
      series: series,
      axes: [{}, { label: unit, size: 70 }],
    };
    charts[id] = new uPlot(opts, [xs].concat(ys), el);
  }

  function column(rows, pick) {
    return rows.map(pick);
  }

  function overTime(prefix, rows) {
    const xs = column(rows, function (r) { return r.second; });
    draw(prefix + "rate", "Throughput", "samples/s", ["samples/s", "errors/s"], xs,
      [column(rows, function (r) { return r.samples; }),
       column(rows, function (r) { return r.failures; })]);
    const qs = ["p50", "p90", "p95", "p99"];
    draw(prefix + "latency", "Response time", "ms", qs, xs,
      qs.map(function (q) { return column(rows, function (r) { return r.elapsed[q]; }); }));
    draw(prefix + "errors", "Error rate", "%", ["error %"], xs,
      [column(rows, function (r) { return 100 * r.error_rate; })]);
  }

  const run = data.series;
  overTime("chart-", run);
  draw("chart-threads", "Active threads", "threads", ["threads"],
    column(run, function (r) { return r.second; }), [column(run, function (r) { return r.threads; })]);

  const pick = document.getElementById("label-pick");
  if (pick) {
    const drawLabel = function () { overTime("chart-label-", data.label_series[pick.value] || []); };
    pick.addEventListener("change", drawLabel);
    drawLabel();
  }

  const engines = data.engines;
  if (engines.length) {
    const names = engines.map(function (e) { return e.engine_id; });
    const cpu = uPlot.join(engines.map(function (e) { return [e.ts, e.cpu_cores]; }));
    draw("chart-cpu", "Engines' CPU", "cores", names, cpu[0], cpu.slice(1));
    const mem = uPlot.join(engines.map(function (e) {
      return [e.ts, e.memory_bytes.map(function (b) { return b === null ? null : b / 1048576; })];
    }));
    draw("chart-memory", "Engines' memory", "MiB", names, mem[0], mem.slice(1));
  }
})();
