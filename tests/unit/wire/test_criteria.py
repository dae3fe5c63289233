"""The criteria syntax: what parses to what, and the errors for what does not."""

from __future__ import annotations

import pytest

from wire.criteria import Criterion, CriterionError, Window, parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "p95(elapsed) > 500ms for 30s",
            ("p95", "elapsed", None, ">", 500.0, Window.FOR, 30, False),
        ),
        ("error_rate > 5% over 60s", ("error_rate", None, None, ">", 0.05, Window.OVER, 60, False)),
        ("rps < 100 for 20s after ramp-up", ("rps", None, None, "<", 100.0, Window.FOR, 20, True)),
        (
            'p99.9(latency) on "POST /login, \\"v2\\"" >= 2s over 2m',
            ("p99.9", "latency", 'POST /login, "v2"', ">=", 2000.0, Window.OVER, 120, False),
        ),
        (
            "avg(connect)<=1.5ms over 10s",
            ("avg", "connect", None, "<=", 1.5, Window.OVER, 10, False),
        ),
        ("failures > 0 for 1s", ("failures", None, None, ">", 0.0, Window.FOR, 1, False)),
    ],
)
def test_criteria_parse(text: str, expected: tuple[object, ...]) -> None:
    c = parse(text)
    fields = (c.measure, c.field, c.label, c.op, c.threshold, c.window, c.seconds)
    assert (*fields, c.after_ramp_up) == expected
    assert c.text == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p95(elapsed) > 500 for 30s", "a time threshold needs a unit: ms or s"),
        ("p96(elapsed) > 1ms for 1s", "expected a measure: .* at position 1"),
        ("p95(size) > 1ms for 1s", "expected a field: elapsed, latency, connect at position 5"),
        ("error_rate > 5 over 60s", r"error_rate is given in %"),
        ("error_rate > 150% over 60s", "cannot exceed 100%"),
        ("rps < 100ms for 20s", "rps takes a plain number"),
        ("rps < 100 for 20", "a duration is whole seconds or minutes"),
        ("rps < 100 for 2h", "a duration is whole seconds or minutes"),
        ("rps < 100 for 61m", "a duration is 1s to 60m"),
        ("rps < 100 during 20s", "expected 'for' or 'over' and a duration at position 11"),
        ("rps < 100 for 20s later", "expected nothing more .* at position 19"),
        ("rps on GET > 1 for 1s", "expected a label in double quotes"),
        ("rps ! 3", "unexpected character at position 5"),
        ("", "expected a measure"),
    ],
)
def test_bad_criteria_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(CriterionError, match=message):
        parse(text)


def test_a_criterion_says_what_breaches_and_what_it_measures() -> None:
    slow: Criterion = parse("p95(elapsed) > 500ms for 30s")
    assert slow.holds(501)
    assert not slow.holds(500)
    assert slow.kind == "latency"
    assert parse("rps <= 10 for 5s").holds(10)
    assert parse("error_rate > 5% over 60s").kind == "errors"
    assert parse("rps < 100 for 20s").kind == "throughput"
