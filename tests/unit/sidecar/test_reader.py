"""The reader's report of what it could not count: exact counts however many lines were bad (the
samples are only the first few), and a file it cannot read at all counted whole, with why."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine_sidecar.reader import Position, ResultReader
from tests.unit.sidecar.test_jtl import HEADER, row


def _read(path: Path) -> tuple[ResultReader, int, list[int]]:
    """Read the whole file: the reader, samples parsed, what the malformed counter was told."""
    told: list[int] = []
    reader = ResultReader(path, max_samples=1_000_000, max_record_bytes=4096,
                          on_malformed=told.append)  # fmt: skip
    reader.open()
    samples = 0
    while (chunk := reader.read()).size or chunk.new_file:
        if chunk.new_file:
            assert reader.start_file(Position(0, 0)) is not None
        samples += len(reader.take(run_id="r", plan_id="p", engine_id="e", seq=0))
    reader.close()
    return reader, samples, told


@pytest.mark.parametrize("bad", [21, 31, 50, 3000])
def test_malformed_lines_are_counted_exactly_past_the_samples_kept(
    bad: int, tmp_path: Path
) -> None:
    path = tmp_path / "results.jtl"
    lines = [b"1,2,3\n" if i % 3 == 0 else row(ts=i) for i in range(1, 3 * bad - 2)]
    assert lines.count(b"1,2,3\n") == bad - 1
    path.write_bytes(HEADER + b"".join(lines) + b"x" * 300_000 + b"\n")  # and one too long
    reader, samples, told = _read(path)
    assert samples == len(lines) - (bad - 1)
    assert reader.errors.count == sum(told) == bad  # bad - 1 short ones, one over-long
    assert dict(reader.errors.by_reason) == {"wrong field count": bad - 1,
                                             "record longer than 4096 bytes": 1}  # fmt: skip
    assert len(reader.errors.samples) == min(bad, 20)
    assert len(set(reader.errors.samples)) == len(reader.errors.samples)  # none repeated
    assert "record longer than 4096 bytes: 1" in reader.errors.summary()


def test_a_header_without_a_required_column_makes_the_file_unreadable_and_counted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "results.jtl"
    header = b"timeStamp,elapsed,label,responseCode\n"  # no `success`
    path.write_bytes(header + b"".join(b"%d,5,home,200\n" % i for i in range(5000)))
    reader, samples, told = _read(path)
    assert samples == 0
    assert reader.errors.count == sum(told) == 5001  # every line, the header's too
    assert reader.errors.unreadable is not None
    assert "lacks ['success']" in reader.errors.unreadable
    assert "jmeter.save.saveservice.successful=true" in reader.errors.unreadable
    assert reader.errors.summary().startswith("results file unreadable, 5001 lines not counted")
    assert len(reader.errors.samples) == 1


def test_a_header_in_any_order_and_delimiter_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "results.jtl"
    path.write_bytes(b"label\tsuccess\telapsed\ttimeStamp\nhome\ttrue\t12\t1000\n"
                     b"cart\tfalse\t30\t2000\n")  # fmt: skip
    reader, samples, _ = _read(path)
    assert (samples, reader.errors.count) == (2, 0)
