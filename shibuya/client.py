"""The API's client commands, for people and CI: upload, apply, run (and watch), stop.

``SHIBUYA_URL`` (default ``http://127.0.0.1:8080``) and ``SHIBUYA_TOKEN`` say where and who.
``shibuya run`` exits with a code CI can act on (:func:`exit_code`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table

from wire.criteria import CriterionError, parse

#: Exit codes of ``shibuya run``.
PASSED, API_ERROR, NOT_FINISHED, CRITERIA = 0, 1, 2, 16
#: Bits added to ``CRITERIA`` per class of failed criterion.
CLASS_BITS = {"latency": 1, "errors": 2, "throughput": 4, "invalid": 8}


class ClientError(RuntimeError):
    pass


def connect() -> httpx.Client:
    url = os.environ.get("SHIBUYA_URL", "http://127.0.0.1:8080")
    token = os.environ.get("SHIBUYA_TOKEN", "")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=30)


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    try:
        r = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise ClientError(f"cannot reach the API at {client.base_url}: {exc}") from exc
    if r.status_code >= 400:
        try:
            error = r.json()["error"]
            details = error.get("details")
            more = "".join(f"\n  {d}" for d in details) if isinstance(details, list) else ""
            message = f"{error['message']}{more}"
        except (ValueError, KeyError, TypeError):
            message = r.text[:500]
        raise ClientError(f"{method} {path}: {r.status_code}: {message}")
    return r.json() if r.content else None


def upload(client: httpx.Client, plan_id: int, files: list[Path]) -> list[dict[str, Any]]:
    out = []
    for f in files:
        with f.open("rb") as body:
            out.append(call(client, "PUT", f"/api/plans/{plan_id}/files/{f.name}", content=body))
    return out


def apply(client: httpx.Client, collection_id: int, config: Path) -> dict[str, Any]:
    result: dict[str, Any] = call(
        client, "PUT", f"/api/collections/{collection_id}/config", content=config.read_bytes()
    )
    return result


def exit_code(run: dict[str, Any]) -> int:
    """0 when the run finished, counted every sample its engines published and passed every
    criterion; 16 + one bit per class of failed criterion (latency 1, errors 2, throughput 4,
    invalid 8); else 2 (failed, stopped, or samples lost: its verdicts saw only part of it)."""
    failed = [c for c in run.get("criteria", []) if c.get("passed") is False]
    if failed:
        bits = 0
        for c in failed:
            try:
                bits |= CLASS_BITS[parse(c["criterion"]).kind]
            except CriterionError:
                bits |= CLASS_BITS["invalid"]
        return CRITERIA + bits
    whole = not run.get("samples_missing")
    return PASSED if run.get("outcome") == "finished" and whole else NOT_FINISHED


def watch(
    client: httpx.Client,
    run_id: str,
    console: Console,
    poll_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Follow the run until it has ended, with a live line; return its final state."""
    start = clock()
    run: dict[str, Any] = call(client, "GET", f"/api/runs/{run_id}")
    latest: dict[str, Any] = {}
    with Live(_line(run, latest, 0.0), console=console, refresh_per_second=4) as live:
        while run.get("outcome") is None:
            time.sleep(poll_s)
            run = call(client, "GET", f"/api/runs/{run_id}")
            since = {"since": latest["second"] + 1} if latest else {}
            seconds = call(client, "GET", f"/api/runs/{run_id}/series", params=since)
            latest = seconds[-1] if seconds else latest
            live.update(_line(run, latest, clock() - start))
    if not console.is_terminal:  # a terminal's cursor is below the line already; a pipe's not
        console.print()
    return run


def _line(run: dict[str, Any], latest: dict[str, Any], elapsed_s: float) -> str:
    """State, elapsed, the last whole second's rate and p95, errors, engines."""
    e = run.get("engines") or {}
    rate = latest.get("samples", 0)
    p95 = latest["elapsed"]["p95"] if latest else 0.0
    return (
        f"{run['id']}  {run['state']:<9} {elapsed_s:6.0f} s  {run.get('samples', 0):>12,} samples"
        f"  {rate:>9,} req/s  p95 {p95:>8,.1f} ms  {run.get('failures', 0):>9,} errors"
        f"  engines {e.get('started', 0)}/{e.get('expected', 0)} running,"
        f" {e.get('finished', 0)} finished, {e.get('lost', 0)} lost"
    )


def verdicts(run: dict[str, Any]) -> Table:
    table = Table(title=f"run {run['id']}: {run.get('outcome')} — {run.get('reason', '')}")
    for col in ("criterion", "verdict", "breached at", "value"):
        table.add_column(col)
    for c in run.get("criteria", []):
        verdict = {True: "passed", False: "FAILED", None: "undecided"}[c.get("passed")]
        at = "" if c.get("breach_second_s") is None else str(c["breach_second_s"])
        value = "" if c.get("value") is None else f"{c['value']:g}"
        table.add_row(c["criterion"], verdict + (f" ({c['error']})" if c.get("error") else ""),
                      at, value)  # fmt: skip
    return table


_QUANTILES = ("p50", "p90", "p95", "p99", "p99_9")


def _ms(v: float) -> str:
    return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"


def report_table(report: dict[str, Any]) -> Table:
    """Per label: samples, errors, rate, percentiles, max; the whole run last."""
    run = report["run"]
    table = Table(title=f"run {run['id']}: {run.get('outcome') or run['state']}")
    table.add_column("label")
    for col in ("samples", "errors", "req/s", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "p99.9 ms",
                "max ms", "codes"):  # fmt: skip
        table.add_column(col, justify="right")

    def row(name: str, s: dict[str, Any], style: str = "") -> None:
        codes = ", ".join(f"{k}: {v:,}" for k, v in sorted(s["codes"].items()))
        table.add_row(name, f"{s['samples']:,}", f"{s['failures']:,} ({s['error_rate']:.1%})",
                      f"{s['rps']:,.1f}", *(_ms(s["elapsed"][q]) for q in _QUANTILES),
                      f"{s['elapsed_max_ms']:,}", codes, style=style)  # fmt: skip

    for s in report["labels"]:
        row(s["label"], s)
    if report["total"] is not None:
        row("all labels", report["total"], "bold")
    return table


def comparison_table(cmp: dict[str, Any]) -> Table:
    """Per label, each measure as a → b (change)."""
    table = Table(title=f"{cmp['a']['id']} (a) → {cmp['b']['id']} (b)")
    table.add_column("label")
    measures = ("samples", "rps", "error_rate", "p50", "p95", "p99")
    for m in measures:
        table.add_column(m if m in ("samples", "rps", "error_rate") else f"{m} ms", justify="right")

    def cell(c: dict[str, Any], name: str) -> str:
        def fmt(v: float | None) -> str:
            if v is None:
                return "—"
            return f"{v:.2%}" if name == "error_rate" else f"{v:,.1f}"

        change = "" if c["percent"] is None else f" ({c['percent']:+.1f} %)"
        return f"{fmt(c['a'])} → {fmt(c['b'])}{change}"

    for row in [*cmp["labels"], cmp["total"]]:
        name = row["label"] if row["label"] is not None else "all labels"
        table.add_row(name, *(cell(row["changes"][m], m) for m in measures),
                      style="bold" if row["label"] is None else "")  # fmt: skip
    return table


def status_table(status: dict[str, Any]) -> Table:
    """Per plan: engines asked for, deployed, ready, running; then each engine."""
    launch = status.get("launch")
    since = f"launch {launch['id']} since {launch['launched_at']}" if launch else "not deployed"
    run = f", run {status['run_id']} in progress" if status.get("run_id") else ""
    table = Table(title=f"collection {status['collection_id']} ({status['scheduler']}): "
                  f"{since}{run}")  # fmt: skip
    for col in ("plan", "engine", "phase", "state", "run", "threads", "CPU", "memory"):
        table.add_column(col)
    for p in status["plans"]:
        table.add_row(f"{p['name']} ({p['plan_id']})", f"{p['engines']} asked",
                      f"{p['deployed']} deployed", f"{p['ready']} ready",
                      f"{p['running']} running", "", "", "", style="bold")  # fmt: skip
        for e in status["engines"]:
            if e["plan_id"] == str(p["plan_id"]):
                cpu = "" if e["cpu_cores"] is None else f"{e['cpu_cores']:.2f}"
                mem = "" if e["memory_bytes"] is None else f"{e['memory_bytes'] / 2**20:,.0f} MiB"
                table.add_row("", str(e["index"]), e["phase"] or "", e["state"] or "not heard",
                              e["run_id"] or "", str(e["threads"]), cpu, mem)  # fmt: skip
    return table
