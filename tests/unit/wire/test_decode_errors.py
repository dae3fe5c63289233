"""Bad bytes never crash a consumer: each gives a DecodeError with the reason."""

from __future__ import annotations

import struct

import pytest

from tests.golden import GOLDEN_DIR
from wire import (
    DecodeError,
    EngineStatus,
    SecondMetrics,
    Topic,
    WireError,
    decode_batch,
    decode_message,
    parse_result_key,
    result_key,
    topic_name,
)

BATCH = (GOLDEN_DIR / "result_batch_v1.bin").read_bytes()
STATUS = (GOLDEN_DIR / "engine_status_v1.json").read_bytes()


def _with_header(header: bytes, n: int, columns: bytes) -> bytes:
    header += b" " * (-len(header) % 8)
    return struct.pack("<4sB3xII", b"SHRB", 1, len(header), n) + header + columns


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "shorter than the frame prefix"),
        (b"\x00" * 40, "bad magic"),
        (BATCH[:4] + b"\x02" + BATCH[5:], "unsupported frame version 2"),
        (BATCH[:-1], "does not match header"),
        (BATCH + b"\x00", "does not match header"),
        (_with_header(b"{not json", 0, b""), "bad header"),
        (_with_header(b'{"run":"r"}', 0, b""), "bad header"),
        (
            _with_header(
                b'{"run":"a/b","plan":"p","engine":"e","seq":0,"ts_base_ms":0,'
                b'"labels":[],"codes":[],"messages":[]}',
                0,
                b"",
            ),
            "invalid run id",
        ),
        (
            _with_header(
                b'{"run":"r","plan":"p","engine":"e","seq":0,"ts_base_ms":0,'
                b'"labels":[],"codes":["200"],"messages":[""]}',
                1,
                b"\x00" * 47,
            ),
            "label_idx out of range of 0 values",
        ),
    ],
)
def test_malformed_batches_are_rejected_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason) as info:
        decode_batch(data)
    assert info.value.kind == "result batch"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe", "malformed"),
        (b"[]", "Expected `object`, got `array`"),
        (STATUS.replace(b'"v":1', b'"v":2'), r"Invalid enum value 2 - at `\$.v`"),
        (STATUS.replace(b'"state":"running"', b'"state":"dancing"'), "Invalid enum value"),
        (STATUS.replace(b'"engine_index":0', b'"engine_index":-1'), r">= 0 - at `\$.engine_index`"),
        (STATUS.replace(b'"plan_id":"plan-7",', b""), "missing required field `plan_id`"),
        (
            STATUS.replace(b'"collection_id":"c1"', b'"collection_id":"a/b"'),
            r"matching regex .* - at `\$.collection_id`",
        ),
    ],
)
def test_malformed_messages_are_rejected_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_message(data, EngineStatus)


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    extended = STATUS.replace(b'"detail":""', b'"detail":"","gpu":1')
    assert decode_message(extended, EngineStatus) == decode_message(STATUS, EngineStatus)


def test_metrics_with_an_unknown_histogram_scheme_are_rejected() -> None:
    data = (GOLDEN_DIR / "second_metrics_v1.json").read_bytes()
    with pytest.raises(DecodeError, match="unknown histogram scheme 'hdr'"):
        decode_message(data.replace(b'["log2pct",[0,242]', b'["hdr",[0,242]'), SecondMetrics)
    with pytest.raises(DecodeError, match="buckets and counts differ"):
        decode_message(data.replace(b"[0,242],[1,1]", b"[0,242],[1]"), SecondMetrics)


def test_keys_and_topic_names() -> None:
    assert result_key("run-1", "eng-0") == b"run-1/eng-0"
    assert parse_result_key(b"run-1/eng-0") == ("run-1", "eng-0")
    assert topic_name(Topic.RESULTS) == "shibuya.results.v1"
    assert topic_name(Topic.COMMANDS, "t-123") == "t-123.commands.v1"
    with pytest.raises(WireError, match="invalid engine id 'a/b'"):
        result_key("r", "a/b")
    with pytest.raises(WireError, match="malformed result key"):
        parse_result_key(b"no-separator")
    with pytest.raises(WireError, match="invalid topic prefix"):
        topic_name(Topic.RESULTS, "bad prefix")
