"""Every wire format against its golden file, in both directions."""

from __future__ import annotations

import json

import msgspec
import numpy as np
import pytest

from tests.golden import GOLDEN_DIR, MESSAGES, T0_MS, golden_bytes, result_batch, same_batch
from wire import (
    COLUMNS,
    Command,
    EngineStatus,
    MetricsMessage,
    RunEvent,
    SecondMetrics,
    decode_batch,
    decode_command,
    decode_live,
    decode_message,
    decode_metrics,
    decode_run_event,
    decode_run_status,
    encode_batch,
    encode_message,
)


@pytest.mark.parametrize("name", sorted(golden_bytes()))
def test_encoding_matches_golden_file(name: str) -> None:
    assert golden_bytes()[name] == (GOLDEN_DIR / name).read_bytes()


def test_every_golden_file_is_known() -> None:
    on_disk = {p.name for p in GOLDEN_DIR.iterdir() if p.suffix in (".bin", ".json")}
    assert on_disk == set(golden_bytes())


def test_result_batch_golden_decodes_to_the_samples() -> None:
    batch = decode_batch((GOLDEN_DIR / "result_batch_v1.bin").read_bytes())
    assert (batch.run_id, batch.plan_id, batch.engine_id, batch.seq) == (
        "run-42",
        "plan-7",
        "c1-plan-7-0",
        3,
    )
    assert len(batch) == 3
    assert batch.ts_ms.tolist() == [T0_MS + 5, T0_MS, T0_MS + 999]
    assert [batch.labels[i] for i in batch.label_idx] == ['GET /a, "b"', "POST /ü", 'GET /a, "b"']
    assert [batch.codes[i] for i in batch.code_idx] == [
        "200",
        "Non HTTP response code: java.net.ConnectException",
        "200",
    ]
    assert [batch.messages[i] for i in batch.message_idx] == ["", "Connection refused", ""]
    assert batch.elapsed_ms.tolist() == [120, 2_000_000, 0]
    assert batch.bytes_recv.tolist() == [1523, 2**40, 0]
    assert batch.success.tolist() == [1, 0, 1]
    assert batch.all_threads.tolist() == [10, 10, 1]
    assert same_batch(batch, result_batch())


def test_decoded_columns_use_native_dtypes() -> None:
    # An equal-but-distinct byte-order dtype sends numpy's ufunc.at down a ~30x slower path.
    batch = decode_batch((GOLDEN_DIR / "result_batch_v1.bin").read_bytes())
    for name, dtype in COLUMNS:
        assert batch.column(name).dtype is np.dtype(dtype.type)


@pytest.mark.parametrize(("name", "message"), sorted(MESSAGES.items()))
def test_message_golden_decodes_to_the_object(name: str, message: msgspec.Struct) -> None:
    data = (GOLDEN_DIR / name).read_bytes()
    assert decode_message(data, type(message)) == message
    if name.startswith("command_"):
        assert decode_command(data) == message
    if name.startswith("run_") and name != "run_status_v1.json":
        assert decode_run_event(data) == message
    if name == "engine_status_v1.json":  # forwarded to run-events.v1 by the stream
        assert decode_run_event(data) == message
    if name.endswith("metrics_v1.json"):
        assert decode_metrics(data) == message
    if name in ("live_seconds_v1.json", "purge_deadlines_v1.json"):
        assert decode_live(data) == message


def test_union_decoders_reject_other_kinds() -> None:
    status = (GOLDEN_DIR / "engine_status_v1.json").read_bytes()
    with pytest.raises(ValueError, match="Invalid value 'engine_status'"):
        decode_command(status)
    run_status = (GOLDEN_DIR / "run_status_v1.json").read_bytes()
    with pytest.raises(ValueError, match="Invalid value 'run_status'"):
        decode_run_event(run_status)
    with pytest.raises(ValueError, match="Invalid value 'engine_status'"):
        decode_run_status(status)


def test_round_trip_of_every_message_kind() -> None:
    for message in MESSAGES.values():
        kind: type[msgspec.Struct] = type(message)
        assert decode_message(encode_message(message), kind) == message
    assert {type(m) for m in MESSAGES.values()} >= {
        *Command.__args__,
        *RunEvent.__args__,
        EngineStatus,
        *MetricsMessage.__args__,
    }


def test_empty_batch_round_trips() -> None:
    from wire import BatchBuilder

    empty = BatchBuilder().build(run_id="r", plan_id="p", engine_id="e", seq=0)
    assert len(decode_batch(encode_batch(empty))) == 0


def test_an_engine_s_last_batch_says_so_and_a_frame_without_the_flag_is_not_last() -> None:
    """``last`` came later within version 1: frames without it (the golden one, older sidecars)
    are not last, and a batch that is not last is encoded as before, byte for byte."""
    from dataclasses import replace

    from wire import BatchBuilder

    assert decode_batch((GOLDEN_DIR / "result_batch_v1.bin").read_bytes()).last is False
    empty = BatchBuilder().build(run_id="r", plan_id="p", engine_id="e", seq=4)
    assert b'"last"' not in encode_batch(empty)
    last = decode_batch(encode_batch(replace(empty, last=True)))
    assert (last.last, last.seq, len(last)) == (True, 4, 0)


def test_block_encoding_is_the_same_in_every_process() -> None:
    """A re-sent batch must be byte-identical: string interning may not follow hash order."""
    import subprocess
    import sys

    code = (
        "from wire import BatchBuilder, encode_batch\n"
        "b = BatchBuilder()\n"
        "labels = [f'label {i % 7}' for i in range(50)]\n"
        "b.add_many(ts_ms=range(50), elapsed_ms=range(50), latency_ms=range(50),"
        " connect_ms=range(50), bytes_recv=range(50), bytes_sent=range(50),"
        " grp_threads=range(50), all_threads=range(50), labels=labels,"
        " codes=[str(200 + i % 3) for i in range(50)], success=[True] * 50,"
        " messages=[''] * 50)\n"
        "print(encode_batch(b.build(run_id='r', plan_id='p', engine_id='e', seq=0)).hex())\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1


def test_fields_added_to_a_version_keep_older_messages_readable() -> None:
    """An engine status written before ``unpublished_bytes`` existed (an older sidecar during an
    upgrade) decodes, the field at its default; and the new field does not break older readers,
    which ignore fields they do not know (msgspec's default, kept for every message)."""
    older = (
        b'{"kind":"engine_status","v":1,"engine_id":"c1-plan-7-0","collection_id":"c1",'
        b'"plan_id":"plan-7","engine_index":0,"state":"running","ts_ms":1764288000000}'
    )
    status = decode_message(older, EngineStatus)
    assert status.unpublished_bytes == 0
    newer = msgspec.json.encode({**msgspec.json.decode(older), "a_later_field": 1})
    assert decode_message(newer, EngineStatus) == status


def test_a_start_command_of_an_older_api_decodes_without_properties() -> None:
    """``properties`` came later within v1: a command without it is still a v1 command."""
    from wire import StartEngines, decode_command

    older = json.loads((GOLDEN_DIR / "command_start_v1.json").read_bytes())
    del older["properties"]
    command = decode_command(json.dumps(older).encode())
    assert isinstance(command, StartEngines)
    assert command.properties == {}


def test_metrics_from_before_failure_messages_still_decode() -> None:
    old = (b'{"kind":"second_metrics","v":1,"run_id":"r","plan_id":null,"label":null,'
           b'"second_s":1,"count":1,"failures":1,"codes":{"503":1},"bytes_recv":0,'
           b'"bytes_sent":0,"elapsed_min_ms":1,"elapsed_max_ms":1,"elapsed_sum_ms":1,'
           b'"threads_max":1,"elapsed":["log2pct",[0],[1]],"latency":["log2pct",[0],[1]],'
           b'"connect":["log2pct",[0],[1]]}')  # fmt: skip
    row = decode_metrics(old)
    assert isinstance(row, SecondMetrics)
    assert (row.failures, row.failure_messages) == (1, {})
