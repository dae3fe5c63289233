"""JTL parsing: column sets, delimiters, quoting, partial records and a malformed corpus."""

from __future__ import annotations

import pytest

from engine_sidecar.errors import FormatError
from engine_sidecar.jtl import JtlParser
from engine_sidecar.jtl_format import (
    JMETER_DEFAULT_COLUMNS,
    SHIBUYA_COLUMNS,
    XML_REFUSED,
    JtlFormat,
    detect_format,
)
from wire import BatchBuilder, ResultBatch, encode_batch

HEADER = ",".join(JMETER_DEFAULT_COLUMNS).encode() + b"\n"


def row(
    ts: int = 1,
    elapsed: int = 20,
    label: str = "l",
    code: str = "200",
    success: str = "true",
    fail: str = "",
    sep: str = ",",
) -> bytes:
    values = {
        "timeStamp": str(ts),
        "elapsed": str(elapsed),
        "label": label,
        "responseCode": code,
        "responseMessage": "OK",
        "threadName": "t 1-1",
        "dataType": "text",
        "success": success,
        "failureMessage": fail,
        "bytes": "100",
        "sentBytes": "50",
        "grpThreads": "2",
        "allThreads": "3",
        "URL": "http://x/",
        "Latency": "10",
        "IdleTime": "0",
        "Connect": "1",
    }
    return sep.join(values[c] for c in JMETER_DEFAULT_COLUMNS).encode() + b"\n"


def parse(
    data: bytes, chunk: int = 7, max_record_bytes: int = 64 * 1024
) -> tuple[ResultBatch, JtlParser]:
    first = data[: data.index(b"\n") + 1]
    parser = JtlParser(detect_format(first), max_record_bytes=max_record_bytes)
    out = BatchBuilder()
    for i in range(0, len(data), chunk):
        parser.feed(data[i : i + chunk], out)
    return out.build(run_id="r", plan_id="p", engine_id="e", seq=0), parser


def labels(batch: ResultBatch) -> list[str]:
    return [batch.labels[i] for i in batch.label_idx]


def test_default_csv_with_header_fed_in_small_chunks() -> None:
    data = (
        HEADER
        + row(ts=1000, label="a")
        + row(ts=1001, label="b", code="500", success="false", fail="boom")
    )
    batch, parser = parse(data, chunk=3)
    assert labels(batch) == ["a", "b"]
    assert batch.ts_ms.tolist() == [1000, 1001]
    assert batch.latency_ms.tolist() == [10, 10]
    assert batch.connect_ms.tolist() == [1, 1]
    assert batch.bytes_sent.tolist() == [50, 50]
    assert batch.all_threads.tolist() == [3, 3]
    assert [batch.messages[i] for i in batch.message_idx] == ["", "boom"]
    assert parser.progress.offset == len(data)
    assert parser.progress.line_no == 4
    assert parser.errors.count == 0


def test_quoted_fields_hold_delimiters_quotes_and_newlines() -> None:
    data = HEADER + row(label='"GET /a, ""b"""') + row(label='"multi\nline, label"')
    batch, parser = parse(data, chunk=5)
    assert labels(batch) == ['GET /a, "b"', "multi\nline, label"]
    assert parser.progress.line_no == 5  # the quoted newline counts as a line


def test_a_partial_last_record_waits_for_the_rest() -> None:
    first, second = row(ts=1), row(ts=2)
    parser = JtlParser(detect_format(HEADER))
    out = BatchBuilder()
    assert parser.feed(HEADER + first + second[:10], out) == 1
    assert parser.progress.offset == len(HEADER + first)
    assert parser.feed(second[10:], out) == 1
    assert parser.progress.offset == len(HEADER + first + second)


def test_any_column_set_and_delimiter_from_the_header() -> None:
    header = b"timeStamp\telapsed\tlabel\tsuccess\tLatency\n"
    data = header + b"5\t7\tx\ttrue\t3\n6\t8\ty\tfalse\t4\n"
    batch, parser = parse(data)
    assert parser.format == JtlFormat(
        "\t", ("timeStamp", "elapsed", "label", "success", "Latency"), has_header=True
    )
    assert labels(batch) == ["x", "y"]
    assert batch.latency_ms.tolist() == [3, 4]
    assert batch.connect_ms.tolist() == [0, 0]  # absent columns are 0
    assert [batch.codes[i] for i in batch.code_idx] == ["", ""]


def test_shibuya_pipe_format_without_header() -> None:
    line = b"1700000000000|25|GET /x|200|OK|tg 1-1|true|512|5|10|12|3\n"
    batch, parser = parse(line * 3)
    assert parser.format.columns == SHIBUYA_COLUMNS
    assert parser.format.delimiter == "|"
    assert len(batch) == 3  # the first line is data, not a header
    assert batch.latency_ms.tolist() == [12, 12, 12]
    assert batch.all_threads.tolist() == [10, 10, 10]


def test_default_columns_without_header() -> None:
    batch, parser = parse(row(ts=9) + row(ts=10))
    assert not parser.format.has_header
    assert batch.ts_ms.tolist() == [9, 10]


def test_a_header_without_the_required_columns_is_refused() -> None:
    with pytest.raises(FormatError, match=r"lacks \['elapsed', 'label', 'success'\]"):
        detect_format(b"timeStamp,foo,bar\n")
    with pytest.raises(FormatError, match=r"lacks \['label'\].*saveservice.label=true"):
        detect_format(b"elapsed;timeStamp;success;responseCode\n")


def test_jmeter_s_xml_results_are_refused_with_how_to_switch() -> None:
    for first in (b'<?xml version="1.0" encoding="UTF-8"?>\n', b'<testResults version="1.2">\n'):
        with pytest.raises(FormatError) as refused:
            detect_format(first)
        assert str(refused.value) == XML_REFUSED
        assert "output_format=csv" in XML_REFUSED


def test_a_row_is_not_taken_for_a_header() -> None:
    assert not detect_format(row(ts=1)).has_header
    assert detect_format(b"label|elapsed|timeStamp|success\n").columns == (
        "label", "elapsed", "timeStamp", "success")  # fmt: skip


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b"1,2,3\n", "wrong field count: 3 fields, expected 17"),
        (row()[:40] + b"\n", "wrong field count"),
        (b"\x00\xff\xfe binary \x80\x81\n", "not UTF-8"),
        (row(ts="abc"), "not a number"),  # type: ignore[arg-type]
        (row(elapsed="1.5"), "not a number"),  # type: ignore[arg-type]
        (row(success="yes"), "success is neither true nor false: 'yes'"),
        (b"x" * 1_000_000 + b"\n", "record longer than 65536 bytes: 1000001 bytes"),
    ],
)
def test_malformed_records_are_counted_with_line_and_reason(bad: bytes, reason: str) -> None:
    data = HEADER + row(ts=1) + bad + row(ts=2)
    batch, parser = parse(data, chunk=4096)
    assert batch.ts_ms.tolist() == [1, 2]  # the good records beside it are kept
    assert parser.errors.count == 1
    [(line_no, got)] = parser.errors.samples
    assert line_no == 3
    assert reason in got
    assert parser.progress.offset == len(data)


@pytest.mark.parametrize("quoted", [False, True])
def test_a_record_over_the_limit_is_dropped_when_it_arrives_whole(quoted: bool) -> None:
    """Within one read (the other test of an over-long record feeds it in pieces); quoted, the
    record is split the slow way."""
    label = '"a, ""quoted"" label"' if quoted else "plain"
    long = row(ts=2).replace(b"http://x/", b"http://x/" + b"y" * 5000)
    data = HEADER + row(ts=1, label=label) + long + row(ts=3)
    batch, parser = parse(data, chunk=len(data), max_record_bytes=4096)
    assert batch.ts_ms.tolist() == [1, 3]
    [(line_no, reason)] = parser.errors.samples
    assert (line_no, reason) == (3, f"record longer than 4096 bytes: {len(long)} bytes")


def test_an_unterminated_quote_is_cut_off_at_the_record_limit() -> None:
    data = HEADER + row(ts=1) + b'2,3,"never closed\n' + row(ts=3) * 2000 + b"\n"
    batch, parser = parse(data, chunk=1000, max_record_bytes=4096)
    assert parser.errors.count == 1
    assert "record longer than 4096 bytes" in parser.errors.samples[0][1]
    # What follows the runaway record is parsed again once it ends.
    assert batch.ts_ms.tolist()[0] == 1
    assert len(batch) >= 1


def test_many_errors_keep_a_bounded_sample() -> None:
    _, parser = parse(HEADER + b"bad\n" * 1000)
    assert parser.errors.count == 1000
    assert len(parser.errors.samples) == 20
    assert parser.errors.by_reason == {"wrong field count": 1000}


def test_the_error_report_summarises_kinds_and_the_first_line() -> None:
    _, parser = parse(HEADER + row(ts=1) + b"bad\n" + row(success="yes") + b"worse\n")
    assert parser.errors.summary() == (
        "3 malformed lines (wrong field count: 2, success is neither true nor false: 1); "
        "first: line 3: wrong field count: 1 fields, expected 17"
    )


def test_a_limit_holds_records_back_for_the_next_call() -> None:
    data = HEADER + row(ts=1) + row(ts=2, label='"two\nlines"') + row(ts=3) + row(ts=4)
    parser = JtlParser(detect_format(HEADER))
    first, rest = BatchBuilder(), BatchBuilder()
    assert parser.feed(data, first, limit=2) == 2
    assert parser.progress.offset == len(HEADER + row(ts=1) + row(ts=2, label='"two\nlines"'))
    assert parser.progress.line_no == 5
    assert parser.feed(b"", rest) == 2
    assert parser.progress.offset == len(data)
    a = first.build(run_id="r", plan_id="p", engine_id="e", seq=0)
    b = rest.build(run_id="r", plan_id="p", engine_id="e", seq=1)
    assert a.ts_ms.tolist() == [1, 2]
    assert labels(a) == ["l", "two\nlines"]
    assert b.ts_ms.tolist() == [3, 4]


@pytest.mark.parametrize("first_fails", [True, False])
def test_a_block_encodes_messages_as_record_by_record_parsing_does(first_fails: bool) -> None:
    """A batch read again (after a restart) must be the same bytes, whichever way its records
    were cut into blocks: messages are interned in order of first appearance."""
    records = [row(success="false", fail="boom"), row(), row(success="false", fail="bang"),
               row(success="false"), row(), row(success="false", fail="boom")]  # fmt: skip
    if not first_fails:
        records = records[1:]
    data = HEADER + b"".join(records)
    whole, _ = parse(data, chunk=len(data))
    one_by_one = BatchBuilder()
    parser = JtlParser(detect_format(HEADER))
    for part in (HEADER, *records):
        parser.feed(part, one_by_one)
    single = one_by_one.build(run_id="r", plan_id="p", engine_id="e", seq=0)
    assert encode_batch(whole) == encode_batch(single)
    expected = ["boom", "", "bang", "OK"] if first_fails else ["", "bang", "OK", "boom"]
    assert list(whole.messages) == expected
