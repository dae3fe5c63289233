"""The baseline gate: a run compared per label with an earlier one, failing where a measure
regressed beyond its limit.

    limit   := MEASURE PERCENT            e.g. "p95(elapsed) 10%", "rps 5%", "error_rate 50%"
    MEASURE := p50 | p90 | p95 | p99 | p99.9 "(elapsed)" | avg(elapsed) | error_rate | rps

Times and the error rate regress when they grow, rps when it shrinks. Each limit is judged on
the whole run and on every label either run has: a label only one run has cannot be compared,
and fails as such (a verdict never passes by default); from a baseline of 0 (no errors), any
growth is a regression. The comparison is the API's (``GET /api/runs/{a}/compare/{b}``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from control.results.numbers import ms

#: Limit measure → the comparison's measure, and whether growing is the bad direction.
MEASURES: Final = {
    **{f"{q}(elapsed)": (q, True) for q in ("p50", "p90", "p95", "p99", "p99.9")},
    "avg(elapsed)": ("mean", True),
    "error_rate": ("error_rate", True),
    "rps": ("rps", False),
}
_LIMIT = re.compile(r"\s*(?P<measure>\S+)\s+(?P<percent>\d+(?:\.\d+)?)\s*%\s*")


class LimitError(ValueError):
    """A limit that does not parse; the message says what is expected."""


@dataclass(frozen=True)
class Limit:
    text: str
    measure: str
    """The comparison's name for it: p95, mean, error_rate, rps."""
    percent: float
    worse_up: bool


def parse_limit(text: str) -> Limit:
    m = _LIMIT.fullmatch(text)
    if m is None or m["measure"] not in MEASURES:
        raise LimitError(f"regression limit {text[:80]!r}: expected a measure and a percentage, "
                         f"e.g. 'p95(elapsed) 10%'; measures: {', '.join(MEASURES)}")  # fmt: skip
    name, worse_up = MEASURES[m["measure"]]
    return Limit(text.strip(), name, float(m["percent"]), worse_up)


def gates(comparison: dict[str, Any], limits: list[Limit]) -> list[dict[str, Any]]:
    """Per limit, the whole run and each label: ``name``, ``label``, ``passed``, ``detail``
    (the baseline's value, this run's, the change) and ``error`` when it could not compare."""
    base = comparison["a"]["id"]
    out = []
    for row in [comparison["total"], *comparison["labels"]]:
        label = row["label"]
        where = "all labels" if label is None else label
        for limit in limits:
            name = f"{limit.text} vs {base}" + (f" on {label}" if label is not None else "")
            gate: dict[str, Any] = {"name": name, "label": label, "limit": limit.text}
            change = row["changes"][limit.measure]
            a, b = change["a"], change["b"]
            if a is None or b is None:
                side = "the baseline" if a is None else "this run"
                gate |= {"passed": False, "error": True,
                         "detail": f"{where}: not compared — {side} has no such label"}  # fmt: skip
                out.append(gate)
                continue
            worse = (b - a) if limit.worse_up else (a - b)
            percent = float("inf") if a == 0 and worse > 0 else 0.0 if a == 0 else 100 * worse / a
            passed = percent <= limit.percent
            gate |= {"passed": passed, "error": False, "baseline": a, "value": b,
                     "regression_percent": percent,
                     "detail": f"{where}: {limit.measure} {_fmt(limit, a)} → {_fmt(limit, b)} "
                               f"({_pct(percent)}; limit {limit.percent:g}% worse)"}  # fmt: skip
            out.append(gate)
    return out


#: The columns of :func:`gate_cells`.
GATE_COLUMNS = ["limit", "scope", "verdict", "detail"]


def gate_cells(gate: dict[str, Any]) -> list[str]:
    """A gate's verdict as a row of :data:`GATE_COLUMNS`."""
    word = "passed" if gate["passed"] else "NOT COMPARED" if gate.get("error") else "REGRESSED"
    scope = gate["label"] if gate["label"] is not None else "all labels"
    return [gate["limit"], scope, word, gate["detail"].split(": ", 1)[-1]]


def _fmt(limit: Limit, v: float) -> str:
    if limit.measure == "error_rate":
        return f"{v:.2%}"
    return f"{v:,.1f}/s" if limit.measure == "rps" else f"{ms(v)} ms"


def _pct(percent: float) -> str:
    if percent == float("inf"):
        return "worse from none"
    return f"{percent:.1f}% worse" if percent > 0 else f"{-percent:.1f}% better"
