"""Numbers as people read them in reports: times at the precision a histogram knows (three
significant digits: within its 1 %, docs/histograms.md — ``355 ms``, not ``354.77 ms``), a
criterion's value in its units, a breach second as a time and an offset into the run."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from wire.criteria import CriterionError, parse


def ms(v: float) -> str:
    """Milliseconds with three significant digits: ``1.01``, ``12.3``, ``355``, ``1,230``."""
    if v <= 0 or not math.isfinite(v):
        return "0" if v == 0 else str(v)
    rounded = float(f"{v:.3g}")
    digits = math.floor(math.log10(rounded))
    return f"{rounded:,.{max(0, 2 - digits)}f}"


def measured(criterion: str, v: float | None) -> str:
    """A criterion's value in its units: ``612 ms``, ``4.20%``, ``95.0/s``, ``12``."""
    if v is None:
        return "—"
    try:
        unit = parse(criterion).unit
    except CriterionError:
        return f"{v:g}"
    if unit == "ms":
        return f"{ms(v)} ms"
    if unit == "%":
        return f"{v:.2%}"
    return f"{v:,.1f}/s" if unit == "/s" else f"{v:,.0f}"


def offset(seconds: float) -> str:
    """``+42s``, ``+3m05s``, ``+1h02m03s``."""
    s = max(0, int(seconds))
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return f"+{h}h{m:02d}m{s:02d}s" if h else f"+{m}m{s:02d}s" if m else f"+{s}s"


def at(second_s: int | None, run: dict[str, Any]) -> str:
    """A breach second as ``HH:MM:SS UTC (+offset into the run)``."""
    if second_s is None:
        return ""
    when = datetime.fromtimestamp(second_s, UTC)
    started = run.get("started_at")
    into = ""
    if started:
        into = f" ({offset(second_s - datetime.fromisoformat(started).timestamp())})"
    return f"{when:%H:%M:%S} UTC{into}"


def word(c: dict[str, Any]) -> str:
    """passed, FAILED, NOT EVALUATED (it could not be judged: invalid, no data) or undecided."""
    if c.get("passed") is None:
        return "undecided"
    if c["passed"]:
        return "passed"
    return "NOT EVALUATED" if c.get("error") else "FAILED"


def basis(c: dict[str, Any]) -> str:
    """What a verdict rests on: ``30 s, 4,300 samples``."""
    if not c.get("seconds"):
        return ""
    return f"{c['seconds']:,} s, {c.get('samples', 0):,} samples"


def summary(c: dict[str, Any], run: dict[str, Any]) -> str:
    """One line: what was measured against what, over what — and when it breached."""
    if c.get("error"):
        return str(c["error"])
    text = c["criterion"]
    value, threshold = measured(text, c.get("value")), measured(text, c.get("threshold"))
    op = _op(text)
    line = f"{value} (threshold {op} {threshold}) over {basis(c) or 'nothing'}"
    if c.get("breach_second_s") is not None:
        line = f"breached at {at(c['breach_second_s'], run)}: {line}"
    return line + (f"; {c['note']}" if c.get("note") else "")


def _op(text: str) -> str:
    try:
        return parse(text).op
    except CriterionError:
        return "?"


def change(c: dict[str, Any], name: str) -> str:
    """A measure compared (``ChangeOut``): ``a → b (+x.x %)``."""

    def fmt(x: float | None) -> str:
        if x is None:
            return "—"
        if name == "error_rate":
            return f"{x:.2%}"
        if name in ("samples", "rps"):
            return f"{x:,.0f}" if name == "samples" else f"{x:,.1f}"
        return ms(x)

    pct = "" if c.get("percent") is None else f" ({c['percent']:+.1f} %)"
    return f"{fmt(c['a'])} → {fmt(c['b'])}{pct}"


def verdict(run: dict[str, Any]) -> str:
    """One word for a run: running, passed, failed (criteria), or how it ended otherwise."""
    if run.get("outcome") is None:
        return str(run.get("state", ""))
    failed = [c for c in run.get("criteria", []) if c.get("passed") is False]
    if failed:
        return f"failed ({len(failed)} criteria)"
    if run["outcome"] != "finished" or run.get("samples_missing"):
        return str(run["outcome"]) + (" (samples missing)" if run.get("samples_missing") else "")
    undecided = [c for c in run.get("criteria", []) if c.get("passed") is None]
    return "passed" if not undecided else f"undecided ({len(undecided)} criteria)"


#: The columns of :func:`verdict_cells` and :func:`label_cells`, as every report shows them.
VERDICT_COLUMNS = ["criterion", "verdict", "value", "threshold", "judged on", "breached at", "note"]
LABEL_COLUMNS = ["label", "samples", "errors", "error %", "req/s", "p50 ms", "p90 ms", "p95 ms",
                 "p99 ms", "p99.9 ms", "max ms"]  # fmt: skip


def verdict_cells(c: dict[str, Any], run: dict[str, Any]) -> list[str]:
    """A criterion's verdict as a row of :data:`VERDICT_COLUMNS`."""
    text = c["criterion"]
    return [text, word(c), measured(text, c.get("value")), measured(text, c.get("threshold")),
            basis(c), at(c.get("breach_second_s"), run),
            c.get("error") or c.get("note", "")]  # fmt: skip


def label_cells(name: str, s: dict[str, Any]) -> list[str]:
    """A label's summary (``SummaryOut``) as a row of :data:`LABEL_COLUMNS`."""
    quantiles = ("p50", "p90", "p95", "p99", "p99_9")
    return [name, f"{s['samples']:,}", f"{s['failures']:,}", f"{s['error_rate']:.2%}",
            f"{s['rps']:,.1f}", *(ms(s["elapsed"][q]) for q in quantiles),
            f"{s['elapsed_max_ms']:,}"]  # fmt: skip


def code_name(code: str) -> str:
    """A response code as shown: a transaction's empty one is named."""
    return code or "none (transaction)"
