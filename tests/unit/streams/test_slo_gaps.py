"""A gap of seconds without samples is judged as if each of its seconds had been fed — however
long it is (a results file from a clock a year off makes a gap of 31 million seconds)."""

from __future__ import annotations

import pytest

from streams.slo import RunCriteria
from tests.unit.streams.test_slo import _row
from wire import CriterionResult

CRITERIA = [
    "rps < 5 over run abort",
    "rps < 5 over run",
    "rps < 2 over 30s",
    "rps < 1 for 10s after ramp-up",
    "p95(elapsed) > 500ms for 3s",
    "error_rate > 10% over 20s",
    "avg(elapsed) > 200ms over run abort",
    "failures > 40 over 5s abort",
    'max(elapsed) on "GET /x" > 1s over 10s',
]
YEAR_S = 366 * 86_400


def _fed(gap: int, *, every_second: bool) -> tuple[list[tuple[int, str]], list[CriterionResult]]:
    """Breaches and final verdicts of a run: 40 busy seconds, ``gap`` empty ones, 5 busy."""
    slo = RunCriteria.of_texts(CRITERIA, ramp_up_end_s=20)
    seen: list[tuple[int, str]] = []
    seconds = [*range(40), *range(40 + gap, 45 + gap)]
    for s, previous in zip(seconds, [None, *seconds], strict=False):
        if every_second and previous is not None:
            for empty in range(previous + 1, s):
                seen += [(b.second, b.criterion) for b in slo.observe(empty, [])]
        rows = [_row(s, [100 + s % 7] * 30, failures=s % 3), _row(s, [900], label="GET /x")]
        seen += [(b.second, b.criterion) for b in slo.observe(s, rows)]
    return seen, slo.results(final=True)


@pytest.mark.parametrize("gap", [1, 2, 7, 25, 33, 61, 400, 3_000])
def test_a_gap_is_judged_as_its_seconds_one_by_one(gap: int) -> None:
    assert _fed(gap, every_second=False) == _fed(gap, every_second=True)


@pytest.mark.timeout(10)
def test_a_year_long_gap_counts_every_second_without_stepping_through_them() -> None:
    breaches, results = _fed(YEAR_S, every_second=False)
    by_text = {r.criterion: r for r in results}
    assert by_text["rps < 5 over run"].seconds == 45 + YEAR_S
    assert by_text["rps < 5 over run"].passed is False
    # Over the run with abort: 40 busy seconds of 30 samples fall under 5 a second once 241
    # seconds were judged, at second 240, in the gap.
    assert (240, "rps < 5 over run abort") in breaches
