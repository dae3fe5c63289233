"""Provisional rows of open seconds: what they hold, when they are sent, and their percentiles."""

from __future__ import annotations

import numpy as np

from streams.aggregate import Aggregator
from streams.merge import Received, RunWindows, decode, encode, partials_of
from wire import BatchBuilder, LiveSeconds, decode_live, encode_message

T0 = 1_764_288_000


def _partial(source: str, samples: dict[tuple[str, int], list[int]]) -> Received:
    """One partial of engine ``source``: elapsed times per (label, second)."""
    b = BatchBuilder()
    for (label, s), elapsed in samples.items():
        for i, ms in enumerate(elapsed):
            b.add(ts_ms=(T0 + s) * 1000 + i % 1000, elapsed_ms=ms, label=label, code="200",
                  success=i % 10 != 0, bytes_recv=100, all_threads=7)  # fmt: skip
    agg = Aggregator()
    agg.add(b.build(run_id="r", plan_id="p", engine_id=source, seq=0))
    (partial,) = partials_of(agg.drain_columns(), source, upto_offset=0)
    return decode(encode(partial))


def _rows(live: LiveSeconds | None) -> dict[tuple[str | None, int], tuple[int, int]]:
    assert live is not None
    return {(r.label, r.second_s - T0): (r.count, r.failures) for r in live.rows}


def test_open_seconds_are_sent_whole_once_changed_and_never_once_closed() -> None:
    w = RunWindows("r", grace_s=3, idle_s=10.0)
    assert w.provisional(since_s=0) is None  # nothing yet
    w.apply(_partial("A", {("GET", 0): [10] * 10, ("GET", 1): [20] * 10}), 0, "P/0", now=0.0)
    assert _rows(w.provisional(since_s=0)) == {
        ("GET", 0): (10, 1), (None, 0): (10, 1), ("GET", 1): (10, 1), (None, 1): (10, 1)
    }  # fmt: skip
    assert w.provisional(since_s=0) is None  # unchanged since
    # Another engine adds to second 1: that second is sent again, whole (not the difference).
    w.apply(_partial("B", {("GET", 1): [30] * 5, ("POST", 1): [40] * 20}), 1, "P/0", now=0.5)
    live = w.provisional(since_s=0)
    assert _rows(live) == {("GET", 1): (15, 2), ("POST", 1): (20, 2), (None, 1): (35, 4)}
    assert live is not None
    assert live.closed_s < T0
    total = next(r for r in live.rows if r.label is None)
    assert (total.bytes_recv, total.elapsed_sum_ms, total.threads_max) == (3500, 1150, 7)
    # Second 0 closes (as a final row) and is not provisional any more, even if touched late.
    assert [r.second_s - T0 for r in w.tick(now=100.0) if r.label is None] == [0, 1]
    w.apply(_partial("A", {("GET", 0): [10]}), 2, "P/0", now=100.5)  # a late sample
    assert w.provisional(since_s=0) is None
    assert decode_live(encode_message(live)) == live


def test_a_worker_without_live_rows_keeps_no_trace_of_them() -> None:
    w = RunWindows("r", grace_s=3, idle_s=10.0, live=False)
    w.apply(_partial("A", {("GET", 0): [10] * 10}), 0, "P/0", now=0.0)
    assert w.provisional(since_s=0) is None


def test_seconds_behind_the_horizon_get_no_provisional_rows() -> None:
    w = RunWindows("r", grace_s=3, idle_s=10.0)
    w.apply(_partial("A", {("GET", 0): [10] * 10, ("GET", 5): [10] * 3}), 0, "P/0", now=0.0)
    assert _rows(w.provisional(since_s=T0 + 1)) == {("GET", 5): (3, 1), (None, 5): (3, 1)}


def test_percentiles_of_open_seconds_are_within_one_percent_of_exact() -> None:
    rng = np.random.default_rng(7)
    per_cell = {("GET", 0): rng.lognormal(4, 1, 3000), ("POST", 0): rng.lognormal(6, 0.5, 2000),
                ("GET", 1): rng.integers(1, 5000, 1000).astype(float)}  # fmt: skip
    samples = {k: [max(1, int(v)) for v in vs] for k, vs in per_cell.items()}
    w = RunWindows("r", grace_s=3, idle_s=10.0)
    w.apply(_partial("A", samples), 0, "P/0", now=0.0)
    live = w.provisional(since_s=0)
    assert live is not None
    exact: dict[tuple[str | None, int], list[int]] = {k: v for k, v in samples.items()}
    exact[(None, 0)] = samples[("GET", 0)] + samples[("POST", 0)]
    exact[(None, 1)] = samples[("GET", 1)]
    assert len(live.rows) == len(exact)
    for row in live.rows:
        values = sorted(exact[(row.label, row.second_s - T0)])
        for q, got in zip((0.5, 0.9, 0.95, 0.99, 0.999), row.elapsed, strict=True):
            want = values[max(1, int(np.ceil(q * len(values)))) - 1]  # nearest rank
            assert abs(got - want) <= 0.01 * want, (row.label, q, got, want)
        assert values[0] <= row.elapsed[0] <= row.elapsed[-1] <= values[-1]
