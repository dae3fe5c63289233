"""JSON-lines results: every well-formed line one sample, exact offsets however the bytes
arrive, a bad line counted with its line number and reason, the next ones still read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine_sidecar.jsonl import JsonLinesParser
from engine_sidecar.reader import Position, ResultReader
from wire import BatchBuilder


def _line(i: int, **extra: object) -> bytes:
    sample = {"ts_ms": 1_764_288_000_000 + i, "elapsed_ms": i % 50, "label": f"L{i % 3}",
              "success": i % 7 != 0, "code": "200", "message": "boom", "threads": 4,
              "unknown": [1, 2], **extra}  # fmt: skip
    return json.dumps(sample).encode() + b"\n"


@pytest.mark.parametrize("chunk", [1, 7, 100, 1 << 20])
def test_every_line_is_one_sample_however_the_bytes_arrive(chunk: int) -> None:
    data = b"".join(_line(i) for i in range(200)) + b'{"ts_ms": 5, "ela'  # a partial last line
    parser, out = JsonLinesParser(), BatchBuilder()
    added = sum(parser.feed(data[i : i + chunk], out) for i in range(0, len(data), chunk))
    assert added == len(out) == 200
    assert parser.progress.offset == data.rindex(b"\n") + 1
    assert parser.progress.line_no == 201
    batch = out.build(run_id="r", plan_id="p", engine_id="e", seq=0)
    assert int(batch.column("success").sum()) == 200 - len(range(0, 200, 7))
    assert sorted(batch.messages) in (["", "boom"], ["boom"])  # a success keeps no message


def test_a_limit_holds_lines_back_for_the_next_batch() -> None:
    parser, out = JsonLinesParser(), BatchBuilder()
    data = b"".join(_line(i) for i in range(10))
    assert parser.feed(data, out, limit=4) == 4
    assert parser.progress.offset == len(b"".join(_line(i) for i in range(4)))
    assert parser.feed(b"", out) == 6
    assert parser.progress.offset == len(data)


def test_bad_lines_are_counted_with_their_reason_and_the_rest_read() -> None:
    parser, out = JsonLinesParser(max_record_bytes=200), BatchBuilder()
    lines = [_line(0), b"not json\n", _line(1, elapsed_ms=-1), b"x" * 500 + b"\n",
             json.dumps({"ts_ms": 1, "label": "a"}).encode() + b"\n", b"\n", _line(2)]  # fmt: skip
    data = b"".join(lines)
    assert parser.feed(data[:300], out) + parser.feed(data[300:], out) == 2
    assert parser.progress.offset == len(data)
    assert [line for line, _ in parser.errors.samples] == [2, 3, 4, 5]
    reasons = [reason for _, reason in parser.errors.samples]
    assert reasons[0].startswith("not a sample: JSON is malformed")
    assert "Expected `int` >= 0" in reasons[1]
    assert reasons[2] == "record longer than 200 bytes: 501 bytes"
    assert "missing required field `elapsed_ms`" in reasons[3]


def test_the_reader_tells_json_lines_from_csv(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"".join(_line(i) for i in range(30)))  # a BOM first
    reader = ResultReader(path, max_samples=1000, max_record_bytes=4096)
    reader.open()
    assert reader.read().new_file
    assert reader.start_file(Position(0, 0)) == Position(path.stat().st_dev, path.stat().st_ino)
    assert reader.samples == 30
    reader.close()
