"""Tail a JTL file and publish its samples to Kafka in batches, without loss or double count.

The loop: read new bytes → parse complete records into a batch → when the batch holds
``max_samples`` samples or its first sample waited ``max_interval_ms``, write the batch's range to
the checkpoint as pending, send it, and once the broker acknowledged it, commit the range. On stop
it reads to the end of the file and flushes once more: the last second of a test is never lost.
A send that fails is retried with the same sequence until it is acknowledged (broker restarts).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from engine_sidecar.checkpoint import Checkpoint, Pending
from engine_sidecar.jtl import ErrorReport, FormatError, JtlParser, detect_format
from engine_sidecar.kafka import PublishError
from engine_sidecar.tail import FileTail
from wire import BatchBuilder, encode_batch, result_key

log = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024


class BatchSender(Protocol):
    """Where batches go (the Kafka producer adapter; a fake in unit tests)."""

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Return once the record is acknowledged; raise ``PublishError`` otherwise."""


@dataclass(frozen=True)
class Identity:
    run_id: str
    plan_id: str
    engine_id: str


@dataclass(frozen=True)
class Limits:
    max_samples: int = 2000
    max_interval_ms: int = 500
    poll_interval_s: float = 0.2  # a batch still leaves within max_interval_ms
    max_record_bytes: int = 64 * 1024
    stop_grace_s: float = 30
    """After a stop, how long to keep retrying a batch Kafka does not take."""


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
        self.errors = ErrorReport()
        self.samples_published = 0
        self.threads = 0
        """Active threads of the engine in the last batch (JMeter's ``allThreads``)."""
        self._key = result_key(identity.run_id, identity.engine_id)
        self._ckpt: Checkpoint
        self._tail: FileTail
        self._parser: JtlParser | None = None
        self._builder = BatchBuilder()
        self._generation = -1
        self._stop = asyncio.Event()
        self._give_up_at: float | None = None

    # --- the loop ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set, then drain the file and flush; returns when done.

        Raises :class:`PublishError` if, after the stop, Kafka stays away for ``stop_grace_s``.
        """
        self._stop = stop
        await self._recover()
        first_sample_at: float | None = None
        try:
            while True:
                stopping = stop.is_set()
                data = self._tail.read(CHUNK_BYTES)
                if self._tail.generation != self._generation:
                    await self._flush()  # what we hold belongs to the previous file
                    self._start_file()
                elif data and self._parser is None:
                    self._start_file()
                elif data:
                    self._parse(data)
                if len(self._builder) and first_sample_at is None:
                    first_sample_at = time.monotonic()
                waited = time.monotonic() - (first_sample_at or time.monotonic())
                if (
                    len(self._builder) >= self.limits.max_samples
                    or waited >= self.limits.max_interval_ms / 1000
                    or (stopping and not data)
                ):
                    await self._flush()
                    first_sample_at = None
                    await self._drain_held_back(until_empty=stopping and not data)
                if not data:
                    self._update_backlog()
                    if stopping:
                        return
                    await asyncio.sleep(self.limits.poll_interval_s)
        finally:
            self._tail.close()
            if self._ckpt.pending is None:
                self._ckpt.save(self.checkpoint_path)

    async def _drain_held_back(self, *, until_empty: bool) -> None:
        """Parse the records the size limit held back; send full batches (all, when stopping)."""
        if self._parser is None:
            return
        self._parse(b"")
        while len(self._builder) >= self.limits.max_samples or (until_empty and len(self._builder)):
            await self._flush()
            self._parse(b"")

    def _parse(self, data: bytes) -> None:
        """Parse ``data`` into the batch, up to ``max_samples``; the rest waits in the parser."""
        assert self._parser is not None
        before = self._parser.errors.count
        room = max(0, self.limits.max_samples - len(self._builder))
        self._parser.feed(data, self._builder, limit=room)
        new_errors = self._parser.errors.count - before
        if new_errors:
            self.metrics.malformed.inc(new_errors)
            for line_no, reason in self._parser.errors.samples[-new_errors:]:
                log.warning("%s line %d skipped: %s", self.path, line_no, reason)
                self.errors.add(line_no, reason)

    def _start_file(self) -> None:
        """Begin (or resume) parsing the file the tail is on now."""
        self._generation = self._tail.generation
        head = self._read_head()
        if head is None:
            self._parser = None  # not even one complete line yet: wait for it
            return
        try:
            fmt = detect_format(head)
        except FormatError as exc:
            log.error("%s: %s; its lines are counted as malformed", self.path, exc)
            self.errors.add(1, str(exc))
            self._parser = None
            return
        parser = JtlParser(fmt, max_record_bytes=self.limits.max_record_bytes)
        same_file = (self._ckpt.file_dev, self._ckpt.file_ino) == (self._tail.dev, self._tail.ino)
        if same_file:
            parser.skip_to(self._ckpt.offset, self._ckpt.line_no)
            start = self._ckpt.offset
        else:
            self._ckpt = replace(
                self._ckpt,
                file_dev=self._tail.dev,
                file_ino=self._tail.ino,
                offset=0,
                line_no=1,
                pending=None,
            )
            start = 0
        self._parser = parser
        # The tail may have handed over bytes past ``start`` already: parse them from the file.
        if self._tail.position > start:
            self._parse(self._read_range(start, self._tail.position))

    def _read_head(self) -> bytes | None:
        try:
            with self.path.open("rb") as f:
                line = f.readline(self.limits.max_record_bytes)
        except FileNotFoundError:
            return None
        return line if line.endswith(b"\n") else None

    def _read_range(self, start: int, end: int) -> bytes:
        with self.path.open("rb") as f:
            f.seek(start)
            return f.read(end - start)

    def _update_backlog(self) -> None:
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            size = self._ckpt.offset
        self.metrics.backlog.set(max(0, size - self._ckpt.offset))

    # --- batches ----------------------------------------------------------------------------

    async def _flush(self) -> None:
        if not len(self._builder) or self._parser is None:
            return
        end = self._parser.progress
        c = self._ckpt
        pending = Pending(
            seq=c.next_seq,
            start_offset=c.offset,
            start_line=c.line_no,
            end_offset=end.offset,
            end_line=end.line_no,
        )
        batch = self._builder.build(
            run_id=self.identity.run_id,
            plan_id=self.identity.plan_id,
            engine_id=self.identity.engine_id,
            seq=c.next_seq,
        )
        self._ckpt = replace(c, pending=pending)
        self._ckpt.save(self.checkpoint_path)
        await self._send(encode_batch(batch))
        self._commit(pending, len(batch))
        self.threads = int(batch.all_threads[-1])

    async def _send(self, value: bytes) -> None:
        """Send until acknowledged; once stopping, give up after ``stop_grace_s``.

        Giving up loses nothing: the batch stays pending in the checkpoint, and the next start
        sends it first.
        """
        delay = 0.2
        while True:
            try:
                await self.producer.send(self.topic, self._key, value)
                return
            except PublishError as exc:
                self.metrics.retries.inc()
                if self._stop.is_set():
                    if self._give_up_at is None:
                        self._give_up_at = time.monotonic() + self.limits.stop_grace_s
                    if time.monotonic() >= self._give_up_at:
                        raise PublishError(
                            f"stopping, and Kafka did not take the batch for "
                            f"{self.limits.stop_grace_s:g}s: {exc}; the checkpoint keeps it"
                        ) from exc
                log.warning("batch not acknowledged (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _commit(self, pending: Pending, samples: int) -> None:
        self._ckpt = replace(
            self._ckpt,
            offset=pending.end_offset,
            line_no=pending.end_line,
            next_seq=pending.seq + 1,
            pending=None,
        )
        # Not saved here: the next batch's pending entry (or the stop) writes it. A crash before
        # that re-sends this batch, identical, and the consumer drops it: one fsync per batch.
        self.samples_published += samples
        self.metrics.samples.inc(samples)
        self.metrics.batches.inc()

    async def _recover(self) -> None:
        """Load the checkpoint; re-send a batch that was in flight when we were killed."""
        loaded = Checkpoint.load(self.checkpoint_path)
        ident = self.identity
        if loaded is None or (loaded.run_id, loaded.engine_id) != (ident.run_id, ident.engine_id):
            self._ckpt = Checkpoint(
                run_id=ident.run_id, engine_id=ident.engine_id, file_dev=0, file_ino=0
            )
            self._tail = FileTail(self.path)
            return
        self._ckpt = loaded
        p = loaded.pending
        if p is not None:
            tail = FileTail(self.path, offset=p.start_offset, ino=loaded.file_ino)
            data = tail.read(p.end_offset - p.start_offset)
            same = tail.generation == 0 and len(data) == p.end_offset - p.start_offset
            tail.close()
            if same:
                head = self._read_head()
                assert head is not None
                parser = JtlParser(
                    detect_format(head), max_record_bytes=self.limits.max_record_bytes
                )
                parser.skip_to(p.start_offset, p.start_line)
                builder = BatchBuilder()
                parser.feed(data, builder)
                batch = builder.build(
                    run_id=ident.run_id, plan_id=ident.plan_id, engine_id=ident.engine_id, seq=p.seq
                )
                log.info("re-sending batch %d (%d samples) that was in flight", p.seq, len(batch))
                await self._send(encode_batch(batch))
                self._commit(p, len(batch))
            else:
                log.error("the results file changed since batch %d was sent; not re-sent", p.seq)
                self._ckpt = replace(loaded, pending=None)
        self._tail = FileTail(self.path, offset=self._ckpt.offset, ino=self._ckpt.file_ino)
