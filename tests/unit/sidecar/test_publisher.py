"""The publisher's bookkeeping with a fake sender: resume, re-send, rotation, truncation, retry."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from engine_sidecar.checkpoint import Checkpoint, Pending
from engine_sidecar.errors import PublishError
from engine_sidecar.publisher import Identity, Limits, PublisherMetrics, ResultPublisher
from tests.support.waiting import wait_until
from tests.unit.sidecar.test_jtl import HEADER, row
from wire import ResultBatch, decode_batch

IDENT = Identity("run-1", "plan-1", "engine-0")


class FakeSender:
    def __init__(self, failures: int = 0) -> None:
        self.sent: list[bytes] = []
        self.groups: list[int] = []
        """Batches per call that got through."""
        self.attempts = 0
        self.failures = failures

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        await self.send_all(topic, key, [value])

    async def send_all(self, topic: str, key: bytes, values: Sequence[bytes]) -> None:
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            raise PublishError("broker away")
        assert key == b"run-1/engine-0"
        self.sent.extend(values)
        self.groups.append(len(values))

    @property
    def batches(self) -> list[ResultBatch]:
        return [decode_batch(v) for v in self.sent]

    def timestamps(self) -> list[int]:
        return [t for b in self.batches for t in b.ts_ms.tolist()]


def _publisher(tmp: Path, sender: FakeSender, **limits: int) -> ResultPublisher:
    return ResultPublisher(
        path=tmp / "r.jtl",
        checkpoint_path=tmp / "ckpt.json",
        identity=IDENT,
        producer=sender,
        topic="t",
        metrics=PublisherMetrics(CollectorRegistry()),
        limits=Limits(poll_interval_s=0.01, **limits),
    )


async def _running(publisher: ResultPublisher, during: Callable[[], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(publisher.run(stop))
    await during()
    stop.set()
    await asyncio.wait_for(task, 10)


async def _until(cond: Callable[[], bool]) -> None:
    await asyncio.to_thread(wait_until, "the publisher's progress", cond, 10)


def rows(*ts: int) -> bytes:
    return b"".join(row(ts=t) for t in ts)


def test_a_pending_batch_is_resent_with_the_same_sequence_and_records(tmp_path: Path) -> None:
    jtl = tmp_path / "r.jtl"
    jtl.write_bytes(HEADER + rows(*range(1, 11)))
    a = len(HEADER + rows(1, 2, 3))
    b = len(HEADER + rows(1, 2, 3, 4, 5, 6, 7))
    st = os.stat(jtl)
    Checkpoint(
        run_id="run-1",
        engine_id="engine-0",
        file_dev=st.st_dev,
        file_ino=st.st_ino,
        offset=a,
        line_no=5,
        next_seq=5,
        pending=(Pending(seq=5, start_offset=a, start_line=5, end_offset=b, end_line=9),),
    ).save(tmp_path / "ckpt.json")
    sender = FakeSender()

    async def nothing() -> None:
        pass

    asyncio.run(_running(_publisher(tmp_path, sender), nothing))
    assert [(x.seq, x.ts_ms.tolist()) for x in sender.batches] == [
        (5, [4, 5, 6, 7]),
        (6, [8, 9, 10]),
        (7, []),  # the last
    ]
    done = Checkpoint.load(tmp_path / "ckpt.json")
    assert done is not None
    assert (done.offset, done.line_no, done.next_seq, done.pending) == (
        len(jtl.read_bytes()),
        12,
        8,
        (),
    )


def test_resume_after_a_clean_stop_publishes_only_what_is_new(tmp_path: Path) -> None:
    jtl = tmp_path / "r.jtl"
    jtl.write_bytes(HEADER + rows(1, 2))
    first = FakeSender()

    async def nothing() -> None:
        pass

    asyncio.run(_running(_publisher(tmp_path, first), nothing))
    with jtl.open("ab") as f:
        f.write(rows(3, 4))
    second = FakeSender()
    asyncio.run(_running(_publisher(tmp_path, second), nothing))
    assert first.timestamps() == [1, 2]
    assert second.timestamps() == [3, 4]
    # Each stop ends with an empty batch marked last; the next start goes on after it.
    assert [(b.seq, b.last) for b in first.batches + second.batches] == [
        (0, False), (1, True), (2, False), (3, True),
    ]  # fmt: skip


def test_rotation_and_truncation_lose_nothing(tmp_path: Path) -> None:
    jtl = tmp_path / "r.jtl"
    sender = FakeSender()

    async def during() -> None:
        jtl.write_bytes(HEADER + rows(1, 2))
        await _until(lambda: sender.timestamps() == [1, 2])
        with jtl.open("ab") as f:
            f.write(rows(3))
        jtl.rename(tmp_path / "r.jtl.1")  # rotated: the old file got one more row first
        jtl.write_bytes(HEADER + rows(4, 5))
        await _until(lambda: sender.timestamps() == [1, 2, 3, 4, 5])
        jtl.write_bytes(HEADER + rows(6))  # truncated in place and rewritten
        await _until(lambda: sender.timestamps()[-1:] == [6])

    asyncio.run(_running(_publisher(tmp_path, sender), during))
    assert sender.timestamps() == [1, 2, 3, 4, 5, 6]
    assert [b.seq for b in sender.batches] == list(range(len(sender.batches)))


def test_a_failed_send_is_retried_with_the_same_bytes(tmp_path: Path) -> None:
    (tmp_path / "r.jtl").write_bytes(HEADER + rows(1, 2, 3))
    sender = FakeSender(failures=2)
    publisher = _publisher(tmp_path, sender)

    async def nothing() -> None:
        pass

    asyncio.run(_running(publisher, nothing))
    assert sender.attempts == 4  # two refused, the batch, the last
    assert sender.timestamps() == [1, 2, 3]
    assert publisher.metrics.retries._value.get() == 2


def test_batches_are_cut_by_size_and_time_and_flushed_on_stop(tmp_path: Path) -> None:
    jtl = tmp_path / "r.jtl"
    sender = FakeSender()

    async def during() -> None:
        jtl.write_bytes(HEADER + rows(*range(25)))  # one read: cut into 10 + 10, then 5 by time
        await _until(lambda: len(sender.sent) == 3)
        with jtl.open("ab") as f:
            f.write(rows(25) + row(ts=99)[:10])  # stop flushes it; a partial line is no sample

    publisher = _publisher(tmp_path, sender, max_samples=10, max_interval_ms=200)
    asyncio.run(_running(publisher, during))
    assert [b.ts_ms.tolist() for b in sender.batches] == [
        list(range(10)),
        list(range(10, 20)),
        list(range(20, 25)),
        [25],
        [],
    ]
    # Only the last is marked so, and it comes after every sample.
    assert [b.last for b in sender.batches] == [False] * 4 + [True]
    done = Checkpoint.load(tmp_path / "ckpt.json")
    assert done is not None
    assert done.offset == len(HEADER + rows(*range(26)))  # the partial line is not consumed


def test_on_stop_an_absent_broker_is_waited_for_a_while_then_the_batch_kept(
    tmp_path: Path,
) -> None:
    (tmp_path / "r.jtl").write_bytes(HEADER + rows(1, 2))
    sender = FakeSender(failures=10**6)
    publisher = _publisher(tmp_path, sender)
    publisher.limits = Limits(poll_interval_s=0.01, give_up_s=0.5)
    stop = asyncio.Event()
    stop.set()
    with pytest.raises(PublishError, match=r"did not take the batches for 0\.5s"):
        asyncio.run(publisher.run(stop))
    kept = Checkpoint.load(tmp_path / "ckpt.json")
    assert kept is not None
    assert ([p.seq for p in kept.pending], kept.offset) == ([0], 0)
    # The next start sends it first, and nothing is lost.
    later = FakeSender()
    asyncio.run(_publisher(tmp_path, later).run(stop))
    assert later.timestamps() == [1, 2]
    assert [(b.seq, b.last) for b in later.batches] == [(0, False), (1, True)]


class WriteAheadSender(FakeSender):
    """Checks, as each group is sent, that the checkpoint on disk already holds it as pending."""

    def __init__(self, checkpoint: Path) -> None:
        super().__init__()
        self.checkpoint = checkpoint

    async def send_all(self, topic: str, key: bytes, values: Sequence[bytes]) -> None:
        on_disk = Checkpoint.load(self.checkpoint)
        assert on_disk is not None
        assert [p.seq for p in on_disk.pending] == [decode_batch(v).seq for v in values]
        await super().send_all(topic, key, values)


def test_a_backlog_goes_in_groups_each_written_ahead_once(tmp_path: Path) -> None:
    (tmp_path / "r.jtl").write_bytes(HEADER + rows(*range(70)))
    sender = WriteAheadSender(tmp_path / "ckpt.json")
    stop = asyncio.Event()
    stop.set()
    publisher = _publisher(tmp_path, sender, max_samples=10, max_group=3)
    asyncio.run(publisher.run(stop))
    # 7 batches of 10: three checkpoint writes, not seven; then the last, empty, on its own.
    assert sender.groups == [3, 3, 1, 1]
    assert [b.seq for b in sender.batches] == list(range(8))
    assert sender.timestamps() == list(range(70))
    done = Checkpoint.load(tmp_path / "ckpt.json")
    assert done is not None
    assert (done.next_seq, done.pending, done.line_no) == (8, (), 72)


def test_pending_batches_are_resent_in_order_as_they_were(tmp_path: Path) -> None:
    jtl = tmp_path / "r.jtl"
    jtl.write_bytes(HEADER + rows(*range(1, 11)))
    a, b, c = (len(HEADER + rows(*range(1, n))) for n in (3, 6, 9))
    st = os.stat(jtl)
    pending = (Pending(seq=2, start_offset=a, start_line=4, end_offset=b, end_line=7),
               Pending(seq=3, start_offset=b, start_line=7, end_offset=c, end_line=10))  # fmt: skip
    Checkpoint("run-1", "engine-0", st.st_dev, st.st_ino, offset=a, line_no=4, next_seq=2,
               pending=pending).save(tmp_path / "ckpt.json")  # fmt: skip
    sender = FakeSender()
    stop = asyncio.Event()
    stop.set()
    asyncio.run(_publisher(tmp_path, sender).run(stop))
    assert [(x.seq, x.ts_ms.tolist()) for x in sender.batches] == [
        (2, [3, 4, 5]),
        (3, [6, 7, 8]),
        (4, [9, 10]),
        (5, []),
    ]
    assert sender.groups[0] == 2  # the re-sent ones together, before anything new


def test_a_checkpoint_of_one_batch_at_a_time_still_loads(tmp_path: Path) -> None:
    old = {"run_id": "r", "engine_id": "e", "file_dev": 1, "file_ino": 2, "offset": 10,
           "line_no": 3, "next_seq": 4,
           "pending": {"seq": 4, "start_offset": 10, "start_line": 3, "end_offset": 20,
                       "end_line": 5}}  # fmt: skip
    (tmp_path / "ckpt.json").write_text(json.dumps(old))
    loaded = Checkpoint.load(tmp_path / "ckpt.json")
    assert loaded is not None
    assert loaded.pending == (Pending(4, 10, 3, 20, 5),)


class RefusesTheLast(FakeSender):
    """Takes the batches with samples; the broker goes away before the last one."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[bytes] = []

    async def send_all(self, topic: str, key: bytes, values: Sequence[bytes]) -> None:
        if decode_batch(values[-1]).last:
            self.refused = list(values)
            raise PublishError("broker away")
        await super().send_all(topic, key, values)


def test_a_last_batch_in_flight_is_resent_the_same_bytes(tmp_path: Path) -> None:
    (tmp_path / "r.jtl").write_bytes(HEADER + rows(1, 2))
    first = RefusesTheLast()
    publisher = _publisher(tmp_path, first)
    publisher.limits = Limits(poll_interval_s=0.01, give_up_s=0.2)
    stop = asyncio.Event()
    stop.set()
    with pytest.raises(PublishError):
        asyncio.run(publisher.run(stop))
    kept = Checkpoint.load(tmp_path / "ckpt.json")
    assert kept is not None
    assert [(p.seq, p.last) for p in kept.pending] == [(1, True)]
    later = FakeSender()
    asyncio.run(_publisher(tmp_path, later).run(stop))
    assert later.sent[0] == first.refused[0]  # re-sent as it was: the consumer's dedupe holds
    assert [(b.seq, b.last, len(b)) for b in later.batches] == [(1, True, 0), (2, True, 0)]
