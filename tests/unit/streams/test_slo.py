"""Criteria evaluated on per-second rows: breaches at the right second with the right value."""

from __future__ import annotations

from streams import histogram
from streams.slo import RunCriteria
from wire import Histogram, SecondMetrics
from wire.criteria import parse


def _row(
    second: int, elapsed: list[int], failures: int = 0, label: str | None = None
) -> SecondMetrics:
    idx, cnt = histogram.histogram(elapsed)
    h = Histogram(scheme="log2pct", buckets=idx.tolist(), counts=cnt.tolist())
    return SecondMetrics(
        run_id="r", plan_id="p" if label else None, label=label, second_s=second,
        count=len(elapsed), failures=failures, codes={}, bytes_recv=0, bytes_sent=0,
        elapsed_min_ms=min(elapsed), elapsed_max_ms=max(elapsed), elapsed_sum_ms=sum(elapsed),
        threads_max=1, elapsed=h, latency=h, connect=h,
    )  # fmt: skip


def test_for_needs_consecutive_breaching_seconds() -> None:
    slo = RunCriteria([parse("p95(elapsed) > 500ms for 3s")])
    slow, fast = [600] * 20, [100] * 20
    assert slo.observe(0, [_row(0, slow)]) == []
    assert slo.observe(1, [_row(1, slow)]) == []
    assert slo.observe(2, [_row(2, fast)]) == []  # the streak breaks
    for s in (3, 4):
        assert slo.observe(s, [_row(s, slow)]) == []
    (breach,) = slo.observe(5, [_row(5, slow)])
    assert breach.second == 5
    assert abs(breach.value - 600) / 600 < 0.01
    assert slo.verdicts() == {"p95(elapsed) > 500ms for 3s": False}


def test_over_takes_the_window_as_a_whole() -> None:
    slo = RunCriteria([parse("error_rate > 10% over 3s")])
    assert slo.observe(10, [_row(10, [1] * 10, failures=3)]) == []  # 30 %, not a whole window
    assert slo.observe(11, [_row(11, [1] * 10, failures=0)]) == []
    assert slo.observe(12, [_row(12, [1] * 10, failures=0)]) == []  # 3/30 = 10 %: not above
    (breach,) = slo.observe(13, [_row(13, [1] * 10, failures=4)])  # 4/30
    assert breach.value == 4 / 30


def test_rps_counts_empty_seconds_and_waits_for_the_ramp_up() -> None:
    slo = RunCriteria([parse("rps < 5 for 3s after ramp-up")], ramp_up_end_s=10)
    assert slo.observe(5, [_row(5, [1])]) == []  # during the ramp-up
    assert slo.observe(10, [_row(10, [1] * 10)]) == []
    # Seconds 11 and 12 had no samples at all (a gap), 13 has two: three seconds under 5.
    (breach,) = slo.observe(13, [_row(13, [1, 1])])
    assert breach.second == 13
    assert breach.value == 2


def test_a_label_criterion_reads_only_that_label() -> None:
    slo = RunCriteria(
        [parse('max(elapsed) on "GET /slow" > 1s for 1s'), parse("failures > 0 for 1s")]
    )
    rows = [_row(0, [100]), _row(0, [2000], label="GET /slow"), _row(0, [50], label="GET /fast")]
    (breach,) = slo.observe(0, rows)
    assert breach.value == 2000
    assert slo.verdicts() == {
        'max(elapsed) on "GET /slow" > 1s for 1s': False,
        "failures > 0 for 1s": True,
    }


def test_a_new_owner_goes_on_with_the_windows_it_was_handed() -> None:
    import msgspec

    from streams.slo import CriteriaSnapshot

    texts = [
        "p95(elapsed) > 500ms for 3s",
        "error_rate > 10% over 3s",
        "rps < 5 for 2s after ramp-up",
    ]
    slo = RunCriteria.of_texts([*texts, "p95(elapsed) > 5 parsecs for 3s"], ramp_up_end_s=1)
    slow = [600] * 20
    for s in (0, 1):
        assert slo.observe(s, [_row(s, slow, failures=1)]) == []
    raw = msgspec.json.encode(slo.dump())
    moved = RunCriteria.load(msgspec.json.decode(raw, type=CriteriaSnapshot))
    (breach,) = moved.observe(2, [_row(2, slow, failures=1)])
    assert breach.criterion == texts[0]
    assert breach.second == 2
    assert moved.observe(3, [_row(3, slow, failures=3)]) == []  # 5 / 60 over 1..3
    (late,) = moved.observe(4, [_row(4, slow, failures=5)])  # 9 / 60 over 2..4
    assert late.criterion == texts[1]
    assert abs(late.value - 9 / 60) < 1e-9
    results = {r.criterion: r for r in moved.results(final=True)}
    assert results[texts[2]].passed is True
    assert results[texts[0]].passed is False
    assert results[texts[0]].breach_second_s == 2
    bad = results["p95(elapsed) > 5 parsecs for 3s"]
    assert bad.passed is False
    assert "criterion" in bad.error
    assert moved.verdicts() == {texts[0]: False, texts[1]: False, texts[2]: True,
                                "p95(elapsed) > 5 parsecs for 3s": False}  # fmt: skip
    assert {r.passed for r in slo.results(final=False) if r.criterion == texts[2]} == {None}


def test_only_the_rows_criteria_read_are_wanted() -> None:
    slo = RunCriteria([parse('p95(elapsed) on "GET /a" > 1s for 3s'), parse("rps < 1 for 2s")])
    assert slo.wants(_row(0, [1]))  # a run total
    assert slo.wants(_row(0, [1], label="GET /a"))
    assert not slo.wants(_row(0, [1], label="GET /b"))
