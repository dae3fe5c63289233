"""Two runs' reports compared label by label (control/results/compare.py)."""

from __future__ import annotations

import pytest

from control.results.compare import compare
from control.results.queries import QUANTILES, RunReport, Summary


def _summary(plan: str | None, label: str | None, count: int, p95: float) -> Summary:
    return Summary(
        plan_id=plan, label=label, count=count, failures=count // 10, bytes_recv=0, bytes_sent=0,
        elapsed_min_ms=1, elapsed_max_ms=900, elapsed_mean_ms=50.0, first_second=100,
        last_second=109, percentiles={q: p95 for q in QUANTILES}, latency_percentiles={},
        connect_percentiles={}, codes={}, failure_messages={},
    )  # fmt: skip


def _report(*labels: Summary) -> RunReport:
    total = _summary(None, None, sum(s.count for s in labels), 100.0)
    return RunReport(run_id="r", total=total, labels=list(labels), late_samples=0)


def test_labels_match_by_name_across_plans_and_unmatched_ones_stay() -> None:
    a = _report(_summary("7", "home", 100, 50.0), _summary("7", "cart", 10, 80.0))
    b = _report(_summary("9", "home", 150, 60.0), _summary("9", "pay", 5, 70.0))
    total, rows = compare(a, b)
    assert [(r.label, r.plan_id, r.a is not None, r.b is not None) for r in rows] == [
        ("home", None, True, True),  # the same label in two plans: compared, no one plan
        ("cart", "7", True, False),
        ("pay", "9", False, True),
    ]
    home = rows[0]
    assert (home.change("samples").a, home.change("samples").b) == (100, 150)
    assert home.change("samples").delta == 50
    assert home.change("samples").percent == pytest.approx(50.0)
    assert home.change("p95").delta == pytest.approx(10.0)
    assert home.change("rps").a == pytest.approx(10.0)  # 100 samples over 10 seconds
    assert rows[1].change("p99.9").b is None
    assert rows[1].change("p99.9").delta is None
    assert total.change("samples").delta == 155 - 110


def test_labels_repeated_within_a_run_match_by_plan_and_name() -> None:
    a = _report(_summary("1", "home", 10, 1.0), _summary("2", "home", 20, 1.0))
    b = _report(_summary("1", "home", 30, 1.0), _summary("3", "home", 40, 1.0))
    _, rows = compare(a, b)
    assert [(r.plan_id, r.change("samples").a, r.change("samples").b) for r in rows] == [
        ("1", 10, 30),
        ("2", 20, None),
        ("3", None, 40),
    ]


def test_a_change_from_zero_has_no_percentage() -> None:
    a = _report(_summary("1", "home", 0, 0.0))
    b = _report(_summary("1", "home", 10, 5.0))
    _, rows = compare(a, b)
    assert rows[0].change("samples").delta == 10
    assert rows[0].change("samples").percent is None
