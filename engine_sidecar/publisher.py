"""Publish a results file's samples to Kafka in batches, without loss or double count.

:class:`ResultPublisher` is the flusher: it drives a :class:`~engine_sidecar.reader.ResultReader`
(tail + parse) and, when the batch holds ``max_samples`` samples or at the first send tick after
its first sample (:mod:`wire.ticks`), writes the batch's range to the checkpoint as pending, sends
it, and once the broker acknowledged it, commits the range. On stop it reads to the end of the
file and flushes once more: the last second of a test is never lost. A send that fails is
retried with the same sequence, with back-off, until it is acknowledged — in agent mode for as
long as it takes (a broker outage over the end of a run loses nothing: the engine reports how far
it is behind, and a purge waits for it); in tail mode, once stopping, for ``give_up_s``, after
which the batch stays pending in the checkpoint for the next start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from engine_sidecar.checkpoint import Checkpoint, Pending
from engine_sidecar.errors import PublishError
from engine_sidecar.jtl import ErrorReport
from engine_sidecar.reader import Position, ResultReader
from wire import ResultBatch, encode_batch, result_key
from wire.ticks import SEND_PHASE, until_tick

log = logging.getLogger(__name__)


class BatchSender(Protocol):
    """Where batches go (the Kafka producer adapter; a fake in unit tests)."""

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Return once the record is acknowledged; raise ``PublishError`` otherwise."""

    async def send_all(self, topic: str, key: bytes, values: Sequence[bytes]) -> None:
        """Return once the records, sent in order, are all acknowledged; raise ``PublishError``
        otherwise."""


@dataclass(frozen=True)
class Identity:
    run_id: str
    plan_id: str
    engine_id: str


@dataclass(frozen=True)
class Limits:
    max_samples: int = 2000
    max_interval_ms: int = 500
    poll_interval_s: float = 0.2  # how often the file is read; a batch still leaves on its tick
    max_record_bytes: int = 64 * 1024
    max_group: int = 8
    """Full batches parsed ahead and sent together: one checkpoint write (and fsync) and one
    wait for the broker for all of them, where a backlog has them ready."""
    give_up_s: float | None = None
    """After the stop, how long to keep retrying a batch Kafka does not take before giving up
    (the checkpoint keeps it); ``None``: never give up."""


class PublisherMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.samples = Counter(
            "shibuya_sidecar_samples_published", "samples acknowledged by Kafka", registry=registry
        )
        self.batches = Counter(
            "shibuya_sidecar_batches_published", "batches acknowledged by Kafka", registry=registry
        )
        self.malformed = Counter(
            "shibuya_sidecar_malformed_lines", "JTL records skipped as malformed", registry=registry
        )
        self.retries = Counter(
            "shibuya_sidecar_publish_retries", "sends retried after an error", registry=registry
        )
        self.backlog = Gauge(
            "shibuya_sidecar_backlog_bytes",
            "bytes of the results file not yet published",
            registry=registry,
        )


class ResultPublisher:
    def __init__(
        self,
        *,
        path: Path,
        checkpoint_path: Path,
        identity: Identity,
        producer: BatchSender,
        topic: str,
        metrics: PublisherMetrics,
        limits: Limits = Limits(),
    ) -> None:
        self.path = path
        self.checkpoint_path = checkpoint_path
        self.identity = identity
        self.producer = producer
        self.topic = topic
        self.metrics = metrics
        self.limits = limits
        self.reader = ResultReader(path, max_samples=limits.max_samples,
                                   max_record_bytes=limits.max_record_bytes,
                                   on_malformed=metrics.malformed.inc)  # fmt: skip
        self.samples_published = 0
        self.threads = 0
        """Active threads of the engine in the last batch (JMeter's ``allThreads``)."""
        self._key = result_key(identity.run_id, identity.engine_id)
        self._ckpt = Checkpoint(identity.run_id, identity.engine_id, file_dev=0, file_ino=0)
        self._stop = asyncio.Event()
        self._give_up_at: float | None = None
        self.refused_since: float | None = None
        """Since when (monotonic) Kafka has not taken the batch being sent; ``None`` while it
        takes them."""

    @property
    def errors(self) -> ErrorReport:
        return self.reader.errors

    @property
    def unpublished_bytes(self) -> int:
        """Bytes of the results file not published yet."""
        return self.reader.backlog(self._ckpt.offset)

    def behind(self) -> str:
        """What holds the results back, in words; ``""`` while nothing does."""
        if self.refused_since is None:
            return ""
        waited = time.monotonic() - self.refused_since
        return (f"publishing: {self.unpublished_bytes:,} bytes of results not published yet, "
                f"Kafka not taking them for {waited:.0f} s")  # fmt: skip

    # --- the loop ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set, then drain the file and flush; returns when done.

        Raises :class:`PublishError` if, after the stop, Kafka stays away for ``give_up_s``.
        """
        self._stop = stop
        await self._recover()
        reader, limits = self.reader, self.limits
        interval_s = limits.max_interval_ms / 1000
        send_at: float | None = None  # the batch's tick, found on the wall clock, kept monotonic
        try:
            while True:
                stopping = stop.is_set()
                chunk = reader.read()
                if chunk.new_file:
                    await self._flush()  # what we hold belongs to the previous file
                    self._start_file()
                if reader.samples and send_at is None:
                    send_at = time.monotonic() + until_tick(time.time(), interval_s, SEND_PHASE)
                if (
                    reader.samples >= limits.max_samples
                    or (send_at is not None and time.monotonic() >= send_at)
                    or (stopping and not chunk.size)
                ):
                    await self._flush()
                    send_at = None
                    await self._drain_held_back(until_empty=stopping and not chunk.size)
                if not chunk.size:
                    self.metrics.backlog.set(reader.backlog(self._ckpt.offset))
                    if stopping:
                        await self._send_last()
                        return
                    # Read again at the batch's tick, so that it takes what was written by then.
                    wait = limits.poll_interval_s
                    if send_at is not None:
                        wait = min(wait, max(0.0, send_at - time.monotonic()))
                    await asyncio.sleep(wait)
        finally:
            reader.close()
            if not self._ckpt.pending:
                self._ckpt.save(self.checkpoint_path)

    async def _drain_held_back(self, *, until_empty: bool) -> None:
        """Parse the records the size limit held back; send full batches (all, when stopping)."""
        reader = self.reader
        reader.fill()
        while reader.samples >= self.limits.max_samples or (until_empty and reader.samples):
            await self._flush()
            reader.fill()

    def _start_file(self) -> None:
        """Begin (or resume) parsing the file the reader is on now."""
        c = self._ckpt
        start = self.reader.start_file(Position(c.file_dev, c.file_ino, c.offset, c.line_no))
        if start is not None and (start.dev, start.ino) != (c.file_dev, c.file_ino):
            self._ckpt = replace(c, file_dev=start.dev, file_ino=start.ino, offset=0, line_no=1,
                                 pending=())  # fmt: skip

    # --- batches ----------------------------------------------------------------------------

    async def _flush(self) -> None:
        """Send the batch parsed so far — with the full batches the file has after it (a backlog),
        up to ``max_group`` — as one group: pending in the checkpoint, sent, acknowledged,
        committed."""
        reader, ident, c = self.reader, self.identity, self._ckpt
        group: list[tuple[Pending, ResultBatch]] = []
        start_offset, start_line, seq = c.offset, c.line_no, c.next_seq
        while reader.samples and len(group) < self.limits.max_group:
            end = reader.progress
            batch = reader.take(run_id=ident.run_id, plan_id=ident.plan_id,
                                engine_id=ident.engine_id, seq=seq)  # fmt: skip
            group.append((Pending(seq, start_offset, start_line, end.offset, end.line_no), batch))
            start_offset, start_line, seq = end.offset, end.line_no, seq + 1
            reader.fill()
            if reader.samples < self.limits.max_samples and (
                reader.read().new_file or reader.samples < self.limits.max_samples
            ):
                break  # a batch not yet full waits for its time; a new file for the main loop
        if not group:
            return
        await self._publish(group)
        self.threads = int(group[-1][1].all_threads[-1])

    async def _send_last(self) -> None:
        """After the last sample: an empty batch marked ``last``, sequenced and checkpointed as
        the others, so the stream closes this engine's seconds without waiting for its silence."""
        c, ident = self._ckpt, self.identity
        empty = self.reader.take(run_id=ident.run_id, plan_id=ident.plan_id,
                                 engine_id=ident.engine_id, seq=c.next_seq)  # fmt: skip
        at = Pending(c.next_seq, c.offset, c.line_no, c.offset, c.line_no, last=True)
        await self._publish([(at, replace(empty, last=True))])

    async def _publish(self, group: list[tuple[Pending, ResultBatch]]) -> None:
        """Pending in the checkpoint, sent, acknowledged, committed."""
        self._ckpt = replace(self._ckpt, pending=tuple(p for p, _ in group))
        self._ckpt.save(self.checkpoint_path)
        await self._send([encode_batch(batch) for _, batch in group])
        self._commit(group)

    async def _send(self, values: list[bytes]) -> None:
        """Send until acknowledged; once stopping, give up after ``give_up_s`` (if set).

        Giving up loses nothing: the batches stay pending in the checkpoint, and the next start
        sends them first.
        """
        delay = 0.2
        while True:
            try:
                await self.producer.send_all(self.topic, self._key, values)
                self.refused_since = None
                return
            except PublishError as exc:
                self.metrics.retries.inc()
                if self.refused_since is None:
                    self.refused_since = time.monotonic()
                give_up_s = self.limits.give_up_s
                if self._stop.is_set() and give_up_s is not None:
                    if self._give_up_at is None:
                        self._give_up_at = time.monotonic() + give_up_s
                    if time.monotonic() >= self._give_up_at:
                        raise PublishError(
                            f"stopping, and Kafka did not take the batches for "
                            f"{give_up_s:g}s: {exc}; the checkpoint keeps it"
                        ) from exc
                log.warning("batches not acknowledged (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _commit(self, group: list[tuple[Pending, ResultBatch]]) -> None:
        last = group[-1][0]
        self._ckpt = replace(self._ckpt, offset=last.end_offset, line_no=last.end_line,
                             next_seq=last.seq + 1, pending=())  # fmt: skip
        # Not saved here: the next group's pending entries (or the stop) write it. A crash before
        # that re-sends these batches, identical, and the consumer drops them: one fsync a group.
        samples = sum(len(batch) for _, batch in group)
        self.samples_published += samples
        self.metrics.samples.inc(samples)
        self.metrics.batches.inc(len(group))

    async def _recover(self) -> None:
        """Load the checkpoint; re-send the batches that were in flight when we were killed."""
        loaded = Checkpoint.load(self.checkpoint_path)
        ident = self.identity
        if loaded is None or (loaded.run_id, loaded.engine_id) != (ident.run_id, ident.engine_id):
            return  # a fresh start: the placeholder of __init__
        self._ckpt = loaded
        group = [
            (p, self.reader.reread(
                loaded.file_ino, Position(loaded.file_dev, loaded.file_ino, p.start_offset,
                                          p.start_line),
                p.end_offset, run_id=ident.run_id, plan_id=ident.plan_id,
                engine_id=ident.engine_id, seq=p.seq,
            ))
            for p in loaded.pending
        ]  # fmt: skip
        if group:
            seqs = f"{group[0][0].seq}-{group[-1][0].seq}"
            resent = [(p, replace(batch, last=p.last)) for p, batch in group if batch is not None]
            if len(resent) == len(group):
                log.info("re-sending batches %s (%d samples) that were in flight", seqs,
                         sum(len(batch) for _, batch in resent))  # fmt: skip
                await self._send([encode_batch(batch) for _, batch in resent])
                self._commit(resent)
            else:
                log.error("the results file changed since batches %s were sent; not re-sent",
                          seqs)  # fmt: skip
                self._ckpt = replace(loaded, pending=())
        self.reader.open(self._ckpt.offset, self._ckpt.file_ino)
