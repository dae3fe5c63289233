"""The live run page in a real headless chromium: a one-hour run, 100 labels.

    .venv/bin/python -m bench.ui_live [--seconds 3600] [--labels 100] [--repeat 30]

The UI's own modules (``control/ui/charts.js``, ``dom.js``) and uPlot, served from 127.0.0.1,
fed synthetic rows. Each row of the table against a baseline measured in the same run:

* a new second at the end of an ``--seconds`` run: four charts of that many points redrawn
  (what the page does each second) — against rebuilding the four charts from scratch, as a page
  that re-renders everything would;
* a reconnect's burst: ``--seconds`` rows at once, drawn once (the page redraws at most once a
  frame) — against a redraw per row;
* the label table of ``--labels`` labels, built as text nodes (what the page does every 2 s) —
  against the same table as one escaped HTML string (the fastest way a browser builds a table,
  shown for scale).

Times are medians of ``--repeat`` (the burst: of 3), in milliseconds, including the drawing.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tests.support.browser import chromium

ROOT = Path(__file__).resolve().parents[1]
HARNESS = """<!doctype html><html><head><meta charset="utf-8">
<link rel="icon" href="data:,"><link rel="stylesheet" href="uPlot.min.css">
<script src="uPlot.iife.min.js"></script></head>
<body><div id="box" style="width:1100px"></div>
<script type="module">
import { LiveCharts } from "./charts.js";
import { h, number, table } from "./dom.js";
window.bench = { LiveCharts, h, number, table };
</script></body></html>"""

JS = """
const row = (i) => ({ second: 1.7e9 + i, samples: 900 + (i * 7) % 200, failures: i % 5,
  error_rate: 0.004, threads: 100, elapsed: { p50: 10 + i % 3, p90: 20, p95: 31, p99: 55 } });
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const drawn = () => Promise.resolve();  // uPlot commits a setData in a microtask
async function fill(n) {
  const box = document.getElementById("box");
  box.replaceChildren();
  const c = new bench.LiveCharts(box, "bench");
  for (let i = 0; i < n; i++) c.put(row(i));
  c.flush();
  await drawn();
  return c;
}
"""

APPEND = (
    JS
    + """async ({ n, repeat }) => {
  const c = await fill(n);
  const out = [];
  for (let k = 0; k < repeat; k++) {
    const t0 = performance.now();
    c.put(row(n + k)); c.flush(); await drawn();
    out.push(performance.now() - t0);
  }
  c.destroy();
  return median(out);
}"""
)

REBUILD = (
    JS
    + """async ({ n, repeat }) => {
  const out = [];
  for (let k = 0; k < repeat; k++) {
    const t0 = performance.now();
    const c = await fill(n + k);
    out.push(performance.now() - t0);
    c.destroy();
  }
  return median(out);
}"""
)

BURST = (
    JS
    + """async ({ n, once }) => {
  const out = [];
  for (let k = 0; k < 3; k++) {
    const box = document.getElementById("box");
    box.replaceChildren();
    const c = new bench.LiveCharts(box, "bench");
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      c.put(row(i));
      if (!once) { c.flush(); await drawn(); }
    }
    c.flush(); await drawn();
    out.push(performance.now() - t0);
    c.destroy();
  }
  return median(out);
}"""
)

LABELS = (
    JS
    + """async ({ labels, repeat, html }) => {
  const rows = Array.from({ length: labels }, (_, i) => [`GET /api/items/${i} <b>`, 1000 + i,
    i % 9, "0.9 %", 12.5, 10.1, 8, 19, 25, 41]);
  const head = ["Label", "Samples", "Failures", "Errors", "Rate", "Mean", "p50", "p90", "p95",
    "p99"];
  const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const box = document.getElementById("box");
  const out = [];
  for (let k = 0; k < repeat; k++) {
    const t0 = performance.now();
    if (html) {
      box.innerHTML = "<table><thead><tr>" + head.map((c) => `<th>${esc(c)}</th>`).join("") +
        "</tr></thead><tbody>" + rows.map((r) => "<tr>" + r.map((c) => `<td>${esc(c)}</td>`)
        .join("") + "</tr>").join("") + "</tbody></table>";
    } else {
      box.replaceChildren(bench.table(head, rows.map((r) => r.map((c) =>
        typeof c === "number" ? bench.number(c, 1) : c))));
    }
    void box.offsetHeight;  // laid out
    out.push(performance.now() - t0);
  }
  return median(out);
}"""
)


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(folder: Path) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=3600, help="seconds of the run")
    ap.add_argument("--labels", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for f in ("charts.js", "dom.js"):
            shutil.copy(ROOT / "control" / "ui" / f, folder / f)
        for f in ("uPlot.iife.min.js", "uPlot.min.css"):
            shutil.copy(ROOT / "control" / "results" / "assets" / f, folder / f)
        (folder / "index.html").write_text(HARNESS)
        server, url = serve(folder)
        try:
            with chromium() as browser:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(f"{url}/index.html")
                page.wait_for_function("window.bench !== undefined")
                n, r = args.seconds, args.repeat

                def ms(js: str, **kw: Any) -> float:
                    return float(page.evaluate(js, kw))

                rows = [
                    (f"a new second, {n:,}-second run (4 charts)",
                     ms(APPEND, n=n, repeat=r), "rebuild the 4 charts", ms(REBUILD, n=n, repeat=r)),
                    (f"a burst of {n:,} seconds, drawn once", ms(BURST, n=n, once=True),
                     "a redraw per second", ms(BURST, n=n, once=False)),
                    (f"the label table, {args.labels} labels (text nodes)",
                     ms(LABELS, labels=args.labels, repeat=r, html=False),
                     "one escaped HTML string",
                     ms(LABELS, labels=args.labels, repeat=r, html=True)),
                ]  # fmt: skip
        finally:
            server.shutdown()
    table = Table(title="The live run page in chromium (ms, medians)")
    for col in ("what the page does", "ms", "baseline", "ms", "page / baseline"):
        table.add_column(col, justify="right" if col in ("ms", "page / baseline") else "left")
    for what, mine, baseline, base_ms in rows:
        table.add_row(what, f"{mine:.2f}", baseline, f"{base_ms:.2f}", f"{mine / base_ms:.3g}")
    Console(width=130).print(table)


if __name__ == "__main__":
    main()
