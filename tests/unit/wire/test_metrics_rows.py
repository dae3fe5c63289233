"""A run's closed rows as few ``MetricsRows`` records (wire/messages.py ``encode_rows``): in
order, none lost or repeated, each record within the size a topic takes."""

from __future__ import annotations

import pytest

from wire import Histogram, MetricsRows, SecondMetrics, decode_metrics, encode_rows

EMPTY = Histogram(scheme="log2pct", buckets=[], counts=[])


def _row(i: int, message_bytes: int) -> SecondMetrics:
    return SecondMetrics(
        run_id="run-1", plan_id="p", label=f"label {i}", second_s=1_764_288_000 + i // 7,
        count=1, failures=1, codes={"500": 1}, bytes_recv=0, bytes_sent=0, elapsed_min_ms=1,
        elapsed_max_ms=1, elapsed_sum_ms=1, threads_max=1, elapsed=EMPTY, latency=EMPTY,
        connect=EMPTY, failure_messages={"x" * message_bytes: 1},
    )  # fmt: skip


@pytest.mark.parametrize(("rows", "message_bytes", "max_bytes"),
                         [(1, 10, 4096), (2000, 10, 4096), (300, 500, 4096),
                          (50, 3000, 4096), (5, 9000, 4096), (2000, 200, 512 * 1024)])  # fmt: skip
def test_rows_travel_in_order_within_the_record_size(
    rows: int, message_bytes: int, max_bytes: int
) -> None:
    given = [_row(i, message_bytes) for i in range(rows)]
    records = encode_rows("run-1", given, max_bytes)
    decoded = [decode_metrics(r) for r in records]
    assert all(isinstance(m, MetricsRows) and m.run_id == "run-1" for m in decoded)
    assert [row for m in decoded for row in m.rows] == given  # type: ignore[union-attr]
    for record, message in zip(records, decoded, strict=True):
        assert len(record) <= max_bytes or len(message.rows) == 1  # type: ignore[union-attr]
    assert len(records) <= 1 + sum(len(r) for r in records) // (max_bytes // 2)  # not one a row


def test_no_rows_no_record() -> None:
    assert encode_rows("run-1", []) == []
