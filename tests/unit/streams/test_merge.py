"""The merge rules without Kafka: when windows close, what is late, what a replay skips."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from streams import merge
from streams.aggregate import Aggregator
from streams.columns import SLOTS
from streams.merge import Received, RunCursor, RunWindows, decode, encode, partials_of
from wire import BatchBuilder, DecodeError, SecondMetrics

T0 = 1_764_288_000
GRACE = 2
IDLE = 5.0


def _partial(source: str, seconds: list[int], per_second: int = 3, label: str = "L") -> Received:
    b = BatchBuilder()
    for s in seconds:
        for i in range(per_second):
            b.add(ts_ms=(T0 + s) * 1000 + i, elapsed_ms=10 * (i + 1), label=label, code="200",
                  success=i != 0, bytes_recv=100)  # fmt: skip
    agg = Aggregator()
    agg.add(b.build(run_id="r", plan_id="p", engine_id="e", seq=0))
    (partial,) = partials_of(agg.drain_columns(), source, upto_offset=0)
    return decode(encode(partial))


def _seconds(rows: list[SecondMetrics]) -> list[int]:
    return sorted({r.second_s - T0 for r in rows})


def test_a_window_waits_for_every_active_source() -> None:
    w = RunWindows("r", GRACE, IDLE)
    out = w.apply(_partial("A", [0, 1, 2, 3, 4, 5]), 0, "P/0", now=0.0)
    assert out.rows == []  # open for less than the grace period
    assert _seconds(w.tick(now=2.0)) == [0, 1, 2, 3]  # A is at 5: up to 5 - 2
    w.apply(_partial("B", [4]), 1, "P/0", now=2.1)  # a second source, behind A
    assert w.tick(now=4.5) == []  # window 4 waits for B to pass 6
    assert w.apply(_partial("B", [6]), 2, "P/0", now=4.6).rows == []  # A is only at 5
    assert _seconds(w.apply(_partial("A", [7]), 3, "P/0", now=4.7).rows) == [4]
    # B goes quiet: after the idle time only A counts; with no active source, all close.
    assert _seconds(w.tick(now=4.65 + IDLE)) == [5]
    assert _seconds(w.tick(now=100.0)) == [6, 7]
    assert w.open_seconds == []
    assert w.closed_s == T0 + 7


def test_a_run_s_first_second_from_a_second_source_within_the_grace_is_not_late() -> None:
    w = RunWindows("r", GRACE, IDLE)
    assert w.apply(_partial("A", [10]), 0, "P/0", now=0.0).rows == []
    assert w.tick(now=0.5) == []
    out = w.apply(_partial("B", [9, 10]), 1, "P/0", now=1.0)  # B started a second earlier
    assert (out.late, out.late_samples, w.cursor.late_samples) == (None, 0, 0)
    assert _seconds(w.tick(now=100.0)) == [9, 10]


def test_rows_per_label_and_run_totals_add_up() -> None:
    w = RunWindows("r", GRACE, IDLE)
    w.apply(_partial("A", [0], label="GET"), 0, "P/0", now=0.0)
    w.apply(_partial("B", [0], label="POST"), 1, "P/0", now=0.0)
    rows = w.tick(now=100.0)
    by_key = {(r.plan_id, r.label): r for r in rows}
    assert set(by_key) == {("p", "GET"), ("p", "POST"), (None, None)}
    total = by_key[(None, None)]
    assert total.count == 6
    assert total.failures == 2
    assert total.bytes_recv == 600
    assert total.elapsed_sum_ms == 2 * (10 + 20 + 30)
    assert sum(total.elapsed.counts) == 6
    assert (total.elapsed_min_ms, total.elapsed_max_ms) == (10, 30)


def test_late_samples_become_late_rows_under_the_partials_id() -> None:
    w = RunWindows("r", GRACE, IDLE)
    w.apply(_partial("A", [0, 1]), 0, "P/0", now=0.0)
    assert _seconds(w.tick(now=100.0)) == [0, 1]
    out = w.apply(_partial("B", [0, 3]), 7, "P/0", now=101.0)
    assert out.late is not None
    assert out.late.source == "P/0@7"
    assert out.late_samples == 3
    assert {(r.label, r.second_s - T0, r.count) for r in out.late.rows} == {
        ("L", 0, 3),
        (None, 0, 3),
    }
    assert w.open_seconds == [T0 + 3]  # the rest is merged as usual
    assert w.cursor.late_samples == 3


def test_a_replay_skips_what_the_cursor_covers_and_rebuilds_the_rest() -> None:
    cursor = RunCursor(closed_s=T0 + 1, offset=5, late_samples=0)
    w = RunWindows("r", GRACE, IDLE, cursor)
    replayed = w.apply(_partial("A", [1, 2]), 4, "P/0", now=0.0)  # below the cursor's offset
    assert replayed.late is None
    assert replayed.late_samples == 0
    assert w.open_seconds == [T0 + 2]  # window 2 was open, not committed: rebuilt
    fresh = w.apply(_partial("A", [1]), 5, "P/0", now=0.0)  # at the offset: genuinely late
    assert fresh.late_samples == 3
    assert w.offset == 6


def test_partials_round_trip_and_bad_input_is_rejected() -> None:
    received = _partial("A", [0, 1])
    partial = received.partial
    assert decode(encode(partial)).partial == partial
    assert received.cells.samples == 6
    wild = np.frombuffer(partial.hist_slots, "<i8").copy()
    wild[0] = SLOTS + 5
    with pytest.raises(DecodeError, match="slot outside"):
        decode(encode(msgspec.structs.replace(partial, hist_slots=wild.tobytes())))
    with pytest.raises(DecodeError, match="column lengths differ"):
        decode(encode(msgspec.structs.replace(partial, mins=b"")))
    with pytest.raises(DecodeError):
        decode(b"\x80")  # an empty map: no kind, no fields


def test_a_big_flush_travels_in_chunks_that_add_up_to_the_same_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b = BatchBuilder()
    for s in range(4):
        for i in range(200):
            b.add(ts_ms=(T0 + s) * 1000 + i, elapsed_ms=i, label=f"L{i % 7}", code="200",
                  success=True)  # fmt: skip
    agg = Aggregator()
    agg.add(b.build(run_id="r", plan_id="p", engine_id="e", seq=0))
    drained = agg.drain_columns()
    whole = RunWindows("r", GRACE, IDLE)
    whole.apply(decode(encode(partials_of(drained, "A", 0)[0])), 0, "P/0", now=0.0)
    monkeypatch.setattr(merge, "MAX_ENTRIES", 100)
    chunks = partials_of(drained, "A", 0, done={"r"})
    assert len(chunks) > 4
    assert [c.done for c in chunks] == [False] * (len(chunks) - 1) + [True]  # the last says so
    chunked = RunWindows("r", GRACE, IDLE)
    rows = []
    for offset, chunk in enumerate(chunks):
        rows += chunked.apply(decode(encode(chunk)), offset, "P/0", now=0.0).rows
    assert chunked.open_seconds == []  # closed by the last chunk, its source done
    assert rows == whole.tick(now=100.0)


def _stopped(source: str) -> Received:
    """The partial of a flush that applied only its engines' last batches (empty)."""
    (partial,) = partials_of({}, source, upto_offset=0, done={"r"})
    return decode(encode(partial))


def test_a_source_whose_engines_have_all_stopped_is_not_waited_for() -> None:
    w = RunWindows("r", GRACE, IDLE)
    w.apply(_partial("A", [0, 1, 2]), 0, "P/0", now=0.0)
    w.apply(_partial("B", [0, 1, 2]), 1, "P/0", now=0.0)
    assert w.tick(now=0.5) == []  # open for less than the grace period
    assert w.apply(_stopped("A"), 2, "P/0", now=0.6).rows == []  # B still counts
    # B's engines stop too: every window closes at once, without the grace or the silence.
    assert _seconds(w.apply(_stopped("B"), 3, "P/0", now=0.7).rows) == [0, 1, 2]
    assert (w.open_seconds, w.closed_s) == ([], T0 + 2)


def test_a_stopped_source_that_sends_again_is_waited_for_again() -> None:
    w = RunWindows("r", GRACE, IDLE)
    w.apply(_partial("A", [0]), 0, "P/0", now=0.0)
    w.apply(_partial("B", [0]), 1, "P/0", now=0.0)
    w.apply(_stopped("B"), 2, "P/0", now=0.1)
    w.apply(_partial("B", [1]), 3, "P/0", now=0.2)  # a sidecar restarted for the run
    assert _seconds(w.apply(_stopped("A"), 4, "P/0", now=0.3).rows) == []  # B counts: at 1
    assert _seconds(w.apply(_stopped("B"), 5, "P/0", now=0.4).rows) == [0, 1]
    # A source never heard for the run has nothing to stop.
    lone = RunWindows("r", GRACE, IDLE)
    lone.apply(_partial("A", [0]), 0, "P/0", now=0.0)
    assert lone.apply(_stopped("B"), 1, "P/0", now=0.1).rows == []
