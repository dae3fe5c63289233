// Per-second charts (uPlot) that grow as seconds arrive: columns kept in arrays, redrawn at
// most once per animation frame however fast the rows come. window.shibuyaCharts[name] holds
// each set (for tests: its .seconds, each chart's .data).

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"];

const MEASURES = [
  ["rate", "Throughput", "samples/s", ["samples/s", "errors/s"], (r) => [r.samples, r.failures]],
  ["latency", "Response time", "ms", ["p50", "p90", "p95", "p99"],
    (r) => [r.elapsed.p50, r.elapsed.p90, r.elapsed.p95, r.elapsed.p99]],
  ["errors", "Error rate", "%", ["error %"], (r) => [100 * r.error_rate]],
  ["threads", "Active threads", "threads", ["threads"], (r) => [r.threads]],
];

export class LiveCharts {
  constructor(container, name) {
    this.container = container;
    this.seconds = [];
    this.charts = {};
    this.columns = {};
    this.pending = false;
    window.shibuyaCharts = { ...window.shibuyaCharts, [name]: this };
    for (const [id, title, unit, names] of MEASURES) {
      const el = document.createElement("div");
      el.className = "chart";
      el.id = `${name}-${id}`;
      container.append(el);
      this.columns[id] = names.map(() => []);
      const series = [{}, ...names.map((label, i) => ({
        label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false,
      }))];
      this.charts[id] = new uPlot({
        title, width: this.width(), height: 220, scales: { x: { time: true } }, series,
        axes: [{}, { label: unit, size: 70 }],
      }, [this.seconds, ...this.columns[id]], el);
    }
    this.onResize = () => {
      for (const c of Object.values(this.charts)) c.setSize({ width: this.width(), height: 220 });
    };
    window.addEventListener("resize", this.onResize);
  }

  width() {
    return Math.max(320, Math.min(1100, this.container.clientWidth || 900));
  }

  /** A second's row: a new second is inserted in order; a second already shown (a provisional
   * row, then a newer one, then its final row) is replaced. Seconds mostly come last, so the
   * search starts at the end. */
  put(row) {
    let at = this.seconds.length;
    while (at > 0 && this.seconds[at - 1] > row.second) at -= 1;
    const replace = at > 0 && this.seconds[at - 1] === row.second;
    if (replace) at -= 1;
    else this.seconds.splice(at, 0, row.second);
    for (const [id, , , , pick] of MEASURES) {
      pick(row).forEach((v, i) => {
        if (replace) this.columns[id][i][at] = v;
        else this.columns[id][i].splice(at, 0, v);
      });
    }
    this.redraw();
  }

  clear() {
    this.seconds.length = 0;
    for (const columns of Object.values(this.columns)) for (const c of columns) c.length = 0;
    this.redraw();
  }

  /** Redraw at the next animation frame (once, however many rows came meanwhile). */
  redraw() {
    if (!this.pending) {
      this.pending = true;
      requestAnimationFrame(() => {
        this.pending = false;
        this.flush();
      });
    }
  }

  /** Redraw now. */
  flush() {
    for (const [id] of MEASURES) this.charts[id].setData([this.seconds, ...this.columns[id]]);
  }

  destroy() {
    window.removeEventListener("resize", this.onResize);
    for (const c of Object.values(this.charts)) c.destroy();
  }
}
