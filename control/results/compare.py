"""Two runs side by side: per label, each run's summary and the change from the first to the
second.

Labels are matched by name when every label name is unique within each run (the same test plan
in two collections still compares), else by plan and name. A label only one run has is listed
with the other side empty. Pure: reports in, rows out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from control.results.queries import RunReport, Summary

#: The measures compared, each read from a summary.
MEASURES: Final = ("samples", "rps", "error_rate", "mean", "p50", "p90", "p95", "p99", "p99.9")


def measure(s: Summary, name: str) -> float:
    if name == "samples":
        return float(s.count)
    if name == "rps":
        return s.rps
    if name == "error_rate":
        return s.error_rate
    if name == "mean":
        return s.elapsed_mean_ms
    return s.percentiles[_QUANTILE_OF[name]]


_QUANTILE_OF: Final = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p99.9": 0.999}


@dataclass(frozen=True)
class Change:
    a: float | None
    b: float | None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def percent(self) -> float | None:
        """The change relative to the first run, in percent; None from zero."""
        d = self.delta
        return None if d is None or not self.a else 100.0 * d / self.a


@dataclass(frozen=True)
class Row:
    plan_id: str | None
    label: str | None
    """None for the whole run."""
    a: Summary | None
    b: Summary | None

    def change(self, name: str) -> Change:
        return Change(
            a=None if self.a is None else measure(self.a, name),
            b=None if self.b is None else measure(self.b, name),
        )


def compare(a: RunReport, b: RunReport) -> tuple[Row, list[Row]]:
    """The whole-run row and one row per label (in the first run's order, then the second's)."""
    by_name = _unique_names(a) and _unique_names(b)

    def key(s: Summary) -> tuple[str | None, str | None]:
        return (None, s.label) if by_name else (s.plan_id, s.label)

    left = {key(s): s for s in a.labels}
    right = {key(s): s for s in b.labels}
    keys = list(left) + [k for k in right if k not in left]
    rows = []
    for k in keys:
        one, two = left.get(k), right.get(k)
        plans = {s.plan_id for s in (one, two) if s is not None}
        rows.append(Row(plan_id=plans.pop() if len(plans) == 1 else None, label=k[1], a=one, b=two))
    return Row(plan_id=None, label=None, a=a.total, b=b.total), rows


def _unique_names(report: RunReport) -> bool:
    names = [s.label for s in report.labels]
    return len(names) == len(set(names))
