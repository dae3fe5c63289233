"""The verdict matrix: every measure and window kind, on runs shorter than, as long as and longer
than the window, stopped early, with a silent label — no criterion passes without having been
evaluated, and each verdict says what it rests on."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streams.slo import Breach, RunCriteria
from tests.unit.streams.test_slo import _row
from wire import CriterionResult, SecondMetrics
from wire.criteria import parse

Rows = Callable[[int], list[SecondMetrics]]

#: Criteria that every second of ``_bad`` breaches and no second of ``_good`` does.
MEASURES = ("p95(elapsed) > 500ms", "avg(elapsed) > 500ms", "max(elapsed) > 500ms",
            "error_rate > 5%", "rps < 100", "failures > 5")  # fmt: skip
WINDOW_S = 5


def _bad(second: int) -> list[SecondMetrics]:
    return [_row(second, [1000] * 10, failures=10)]


def _good(second: int) -> list[SecondMetrics]:
    return [_row(second, [100] * 200)]


def _judge(
    text: str, seconds: int, rows: Rows = _bad, ramp_up_end_s: int = 0
) -> tuple[list[Breach], CriterionResult]:
    slo = RunCriteria([parse(text)], ramp_up_end_s)
    breaches = [b for s in range(seconds) for b in slo.observe(s, rows(s))]
    (result,) = slo.results(final=True)
    return breaches, result


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("window", [f"for {WINDOW_S}s", f"over {WINDOW_S}s", "over run"])
@pytest.mark.parametrize("run_s", [WINDOW_S - 2, WINDOW_S, WINDOW_S + 3])
def test_a_breaching_run_fails_whatever_its_length(measure: str, window: str, run_s: int) -> None:
    breaches, result = _judge(f"{measure} {window}", run_s)
    assert result.passed is False
    assert result.error == ""
    if window == "over run":  # judged at the end, on every second
        assert breaches == []
        assert (result.breach_second_s, result.seconds, result.samples) == (
            run_s - 1,
            run_s,
            10 * run_s,
        )
    elif run_s < WINDOW_S:  # the window never filled: judged at the end on what there was
        assert breaches == []
        assert (result.breach_second_s, result.seconds) == (run_s - 1, run_s)
        assert result.note == f"the run gave {run_s} s of the {WINDOW_S} s window: judged on those"
    else:  # the first whole window breached, during the run
        (breach,) = breaches
        assert breach.abort is False  # the run goes on; it fails at its end
        assert (result.breach_second_s, result.seconds, result.samples) == (
            WINDOW_S - 1,
            WINDOW_S,
            10 * WINDOW_S,
        )
    assert result.value is not None
    assert parse(measure + " " + window).holds(result.value)
    assert result.threshold == parse(f"{measure} {window}").threshold


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("window", [f"for {WINDOW_S}s", f"over {WINDOW_S}s", "over run"])
@pytest.mark.parametrize("run_s", [WINDOW_S - 2, WINDOW_S, WINDOW_S + 3])
def test_a_healthy_run_passes_and_says_on_what(measure: str, window: str, run_s: int) -> None:
    breaches, result = _judge(f"{measure} {window}", run_s, _good)
    assert breaches == []
    assert result.passed is True
    assert (result.seconds, result.samples) == (run_s, 200 * run_s)
    assert result.value is not None
    assert not parse(f"{measure} {window}").holds(result.value)
    short = window != "over run" and run_s < WINDOW_S
    assert ("of the 5 s window" in result.note) is short


def test_abort_stops_at_the_breach_and_over_run_judges_the_run_so_far() -> None:
    breaches, result = _judge("error_rate > 5% over run abort", 3)
    assert [(b.second, b.abort, b.seconds) for b in breaches] == [(0, True, 1)]
    assert result.breach_second_s == 0
    slo = RunCriteria([parse("error_rate > 50% over run abort")])
    assert slo.observe(0, [_row(0, [1] * 10, failures=10)]) != []  # 100 % so far


def test_over_run_fails_at_the_end_on_the_whole_run_not_on_a_bad_start() -> None:
    slo = RunCriteria([parse("error_rate > 5% over run")])
    assert slo.observe(0, [_row(0, [1] * 10, failures=10)]) == []  # 100 %, but not the end
    for s in range(1, 10):
        slo.observe(s, [_row(s, [1] * 100)])
    (result,) = slo.results(final=True)
    assert (result.passed, result.breach_second_s) == (True, None)  # 10 / 910: 1.1 %
    assert result.value == pytest.approx(10 / 910)


def test_what_was_never_evaluated_fails_and_says_why() -> None:
    nothing = RunCriteria.of_texts(["error_rate > 5% over 10s", "rps < 1 over run"])
    assert [(r.passed, r.error) for r in nothing.results(final=True)] == [
        (False, "not evaluated: no second of the run was judged"),
        (False, "not evaluated: no second of the run was judged"),
    ]
    _, ramp = _judge("p95(elapsed) > 1s for 2s after ramp-up", 3, _good, ramp_up_end_s=10)
    assert ramp.error == ("not evaluated: no second of the run was judged (the run ended before "
                          "its ramp-up did)")  # fmt: skip
    _, silent = _judge('p95(elapsed) on "GET /gone" > 1s over 2s', 4, _good)
    assert (silent.passed, silent.error) == (
        False,
        'not evaluated: no samples on "GET /gone" in 4 s',
    )
    _, counted = _judge('failures on "GET /gone" > 0 over 2s', 4, _good)
    assert (counted.passed, counted.value) == (True, 0)  # no samples: no failures either


def test_a_run_stopped_early_is_judged_on_the_seconds_it_had() -> None:
    slo = RunCriteria([parse("p95(elapsed) > 500ms over 60s"), parse("rps < 100 for 30s")])
    for s in range(4):  # stopped after 4 seconds of a 10-minute plan
        slo.observe(s, _bad(s))
    slow, thin = slo.results(final=True)
    assert (slow.passed, slow.seconds, slow.note) == (
        False,
        4,
        "the run gave 4 s of the 60 s window: judged on those",
    )
    assert (thin.passed, thin.seconds, thin.value) == (False, 4, 10)


def test_seconds_without_samples_count_for_rps_and_break_latency_streaks() -> None:
    slo = RunCriteria([parse("p95(elapsed) > 500ms for 4s"), parse("rps < 100 for 4s")])
    slo.observe(0, _bad(0))
    slo.observe(3, _bad(3))  # seconds 1 and 2: every engine silent
    latency, rps = slo.results(final=True)
    assert (latency.passed, latency.seconds, latency.note) == (
        True,
        4,
        "longest breaching streak 1 s",
    )
    assert (rps.passed, rps.breach_second_s, rps.value) == (False, 3, 10)


def test_percentiles_are_clamped_to_the_exact_extremes() -> None:
    _, result = _judge("p99(elapsed) > 0ms over run", 2, lambda s: [_row(s, [1] * 5)])
    assert result.value == 1.0  # not the bucket's 1.00995
    _, result = _judge("p50(elapsed) < 10s over run", 1, lambda s: [_row(s, [353] * 5)])
    assert result.value == 353.0
