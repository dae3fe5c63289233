"""A run's report as one self-contained HTML file: opened anywhere, nothing fetched.

The run and its verdicts, the per-label table, charts over time (rate, percentiles, errors, active
threads; any label on demand), response codes, top failure messages, the engines' CPU and memory
and, with a baseline, the comparison and its regression limits. Tables are written here, escaped;
the charts are uPlot (MIT, pinned in web/package-lock.json; scripts/bootstrap copies it into
``assets/``), drawn by ``report.js`` from the data embedded as JSON. A Content-Security-Policy
forbids the page any request.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

from control.errors import UnavailableError
from control.results.gates import GATE_COLUMNS, gate_cells
from control.results.numbers import (
    LABEL_COLUMNS,
    VERDICT_COLUMNS,
    change,
    code_name,
    label_cells,
    verdict,
    verdict_cells,
)

CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "img-src data:")  # fmt: skip


@dataclass
class Page:
    """What the page shows: the API's answers (``ReportOut``, ``SecondOut``, ``ComparisonOut``
    as JSON) and the engines' heartbeats."""

    report: dict[str, Any]
    series: list[dict[str, Any]]
    label_series: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    engines: list[dict[str, Any]] = field(default_factory=list)
    """Per engine: ``engine_id``, ``ts`` (Unix seconds), ``cpu_cores``, ``memory_bytes``."""
    comparison: dict[str, Any] | None = None
    gates: list[dict[str, Any]] = field(default_factory=list)


def asset(name: str) -> str:
    """A file of the report's assets; a clear error when bootstrap has not put it there."""
    try:
        return (resources.files("control.results") / name).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        why = f"the HTML report's asset {name} is missing: run scripts/bootstrap"
        raise UnavailableError(why + " (it installs web/package-lock.json)") from exc


def render(page: Page) -> str:
    run = page.report["run"]
    title = f"Shibuya run {run['id']}"
    data = {"series": page.series, "label_series": page.label_series, "engines": page.engines}
    embedded = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    body = "".join([
        _header(run, page.report.get("total")), _verdicts(run), _labels(page.report),
        _charts(page.report), _codes(page.report), _failures(page.report), _engines(page),
        _baseline(page),
    ])  # fmt: skip
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{_e(title)}</title><style>{asset('assets/uPlot.min.css')}\n"
        f"{asset('report.css')}</style></head>\n<body>{body}\n"
        f'<script id="report-data" type="application/json">{embedded}</script>\n'
        f"<script>{asset('assets/uPlot.iife.min.js')}</script>\n"
        f"<script>{asset('report.js')}</script>\n</body></html>\n"
    )


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _table(head: list[str], rows: list[list[str]], numeric: set[int], ident: str = "",
           total_last: bool = False) -> str:  # fmt: skip
    """A table of escaped text cells; ``numeric`` columns right-aligned."""
    out = [f"<table{f' id={_e(ident)!r}' if ident else ''}><thead><tr>"]
    out += [f"<th>{_e(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for i, row in enumerate(rows):
        total = ' class="total"' if total_last and i == len(rows) - 1 else ""
        cells = "".join(f'<td{" class=num" if j in numeric else ""}>{_e(c)}</td>'
                        for j, c in enumerate(row))  # fmt: skip
        out.append(f"<tr{total}>{cells}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _when(text: str | None) -> str:
    return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M:%S UTC") if text else "—"


def _header(run: dict[str, Any], total: dict[str, Any] | None) -> str:
    v = verdict(run)
    kind = "passed" if v == "passed" else "failed"
    samples = (
        f"{total['samples']:,} samples, {total['failures']:,} failed" if total else "no samples"
    )
    return (
        f'<header><h1>Run {_e(run["id"])}: <span class="verdict-{kind}" id="run-verdict">'
        f"{_e(v)}</span></h1>"
        f'<p class="meta">collection {_e(run["collection_id"])} · started '
        f"{_when(run.get('started_at'))} · ended {_when(run.get('ended_at'))} · {_e(samples)}</p>"
        f'<p class="meta">{_e(run.get("outcome") or run.get("state"))}: {_e(run.get("reason"))}</p>'
        f"{_plan_engines(run)}</header>"
    )


def _plan_engines(run: dict[str, Any]) -> str:
    engines = run.get("plan_engines") or {}
    if not engines:
        return ""
    plans = " · ".join(f"plan {_e(plan)}: {_e(kind)}" for plan, kind in sorted(engines.items()))
    return f'<p class="meta" id="plan-engines">{plans}</p>'


def _verdicts(run: dict[str, Any]) -> str:
    rows = [verdict_cells(c, run) for c in run.get("criteria", [])]
    if not rows:
        return "<h2>Verdicts</h2><p>No criteria: nothing was judged.</p>"
    return "<h2>Verdicts</h2>" + _table(VERDICT_COLUMNS, rows, {2, 3}, "verdicts")


def _labels(report: dict[str, Any]) -> str:
    rows = [label_cells(s["label"], s) for s in report["labels"]]
    if report.get("total"):
        rows.append(label_cells("all labels", report["total"]))
    note = ('<p class="note">Times from log2pct histograms: within 1 % of the exact value, shown '
            "with three significant digits; max is exact.</p>")  # fmt: skip
    numeric = set(range(1, len(LABEL_COLUMNS)))
    return ("<h2>Per label</h2>" + _table(LABEL_COLUMNS, rows, numeric, "label-table",
                                          total_last=bool(report.get("total"))) + note)  # fmt: skip


def _charts(report: dict[str, Any]) -> str:
    options = "".join(f"<option>{_e(s['label'])}</option>" for s in report["labels"])
    by_label = "".join(f'<div class="chart" id="chart-label-{k}"></div>'
                       for k in ("rate", "latency", "errors"))  # fmt: skip
    charts = "".join(f'<div class="chart" id="chart-{k}"></div>'
                     for k in ("rate", "latency", "errors", "threads"))  # fmt: skip
    if options:
        charts += f'<h3>One label</h3><select id="label-pick">{options}</select>{by_label}'
    return "<h2>Over time</h2>" + charts


def _codes(report: dict[str, Any]) -> str:
    rows = [[s["label"], code_name(code), f"{n:,}", f"{n / s['samples']:.1%}"]
            for s in report["labels"] for code, n in sorted(s["codes"].items())]  # fmt: skip
    if not rows:
        return ""
    return "<h2>Response codes</h2>" + _table(["label", "code", "samples", "share"], rows, {2, 3},
                                             "codes")  # fmt: skip


def _failures(report: dict[str, Any]) -> str:
    rows = [[s["label"], message, f"{n:,}", f"{n / s['failures']:.1%}"]
            for s in report["labels"]
            for message, n in s.get("failure_messages", {}).items()]  # fmt: skip
    if not rows:
        return "<h2>Top failure messages</h2><p>No failures.</p>"
    return "<h2>Top failure messages</h2>" + _table(
        ["label", "message", "failures", "share of the label's"], rows, {2, 3}, "failures"
    )


def _engines(page: Page) -> str:
    if not page.engines:
        return "<h2>Engines</h2><p>No engine reported its CPU or memory.</p>"
    return ('<h2>Engines</h2><div class="chart" id="chart-cpu"></div>'
            '<div class="chart" id="chart-memory"></div>')  # fmt: skip


def _baseline(page: Page) -> str:
    c = page.comparison
    if c is None:
        return ""
    measures = ("samples", "rps", "error_rate", "p50", "p95", "p99")
    rows = [[row["label"] if row["label"] is not None else "all labels",
             *(change(row["changes"][m], m) for m in measures)]
            for row in [*c["labels"], c["total"]]]  # fmt: skip
    out = f"<h2>Compared with {_e(c['a']['id'])}</h2>" + _table(
        ["label", *measures], rows, set(range(1, 7)), "comparison", total_last=True
    )
    if page.gates:
        gate_rows = [gate_cells(g) for g in page.gates]
        out += "<h3>Regression limits</h3>" + _table(GATE_COLUMNS, gate_rows, set(), "gates")
    return out
