"""Aggregate raw result batches per results partition; flush partials once a second, exactly once.

For each results partition it owns, the worker holds a :class:`PartitionWork`: an
:class:`~streams.aggregate.Aggregator` (cells in memory, numpy), the last batch sequence applied
per engine (redelivered batches count nothing), and the events not yet covered by a flush. A timer
flushes every partition: one Kafka transaction per partition carries one
:class:`~streams.merge.Partial` per run (to ``partials.v1``, keyed by run) and the partition's
state record (:mod:`streams.ledger`); only then are the events acked. A malformed message is
counted, logged with its position and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import cast

import faust
import msgspec
from faust import Stream
from faust.types import TP, EventT, StreamT
from prometheus_client import CollectorRegistry, Counter

from streams.aggregate import Aggregator
from streams.faust_app import App
from streams.ledger import FencedError, Ledger, Record
from streams.merge import encode, partials_of
from streams.settings import WorkerSettings
from streams.topics import Topics
from streams.wire import DecodeError, decode_batch, run_key

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    MALFORMED = "malformed"
    REPLAYED = "replayed"
    """Already covered by a committed flush (read again after a restart or rebalance)."""


class EngineMark(msgspec.Struct, array_like=True):
    seq: int
    samples: int
    seen_ms: int


class PartitionState(msgspec.Struct, kw_only=True):
    """The state record of one results partition (in the aggregate state topic)."""

    v: int = 1
    offset: int = -1
    """The last results offset covered by committed partials."""
    engines: dict[str, EngineMark] = {}
    """``<run>/<engine>`` → last batch sequence applied, samples so far, last seen."""


_state_decoder = msgspec.json.Decoder(PartitionState)
_state_encoder = msgspec.json.Encoder()


class AggregateMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.samples = Counter(
            "shibuya_ingest_samples", "samples aggregated (after dedupe)", registry=registry
        )
        self.batches = Counter(
            "shibuya_ingest_batches", "result batches by outcome", ["outcome"], registry=registry
        )
        self.flushes = Counter(
            "shibuya_aggregate_flushes", "committed partial flushes", registry=registry
        )
        self.fenced = Counter(
            "shibuya_aggregate_fenced",
            "partitions given up because another worker took them over",
            registry=registry,
        )
        for outcome in Outcome:  # export zeros, so rates and alerts work from the start
            self.batches.labels(outcome.value)


@dataclass
class PartitionWork:
    tp: TP
    ledger: Ledger
    aggregator: Aggregator
    state: PartitionState
    held: list[EventT[bytes]] = field(default_factory=list)
    seen: int = -1
    """The last offset taken in (applied, duplicate or malformed)."""


class Aggregate:
    """The aggregate agent and its flush timer, over the partitions this worker owns."""

    def __init__(
        self, app: App, settings: WorkerSettings, topics: Topics, metrics: AggregateMetrics
    ) -> None:
        self.app = app
        self.settings = settings
        self.topics = topics
        self.metrics = metrics
        self._work: dict[TP, PartitionWork] = {}
        self._opening: dict[TP, asyncio.Task[PartitionWork]] = {}
        self._stream: StreamT[bytes] | None = None
        self._flush_lock = asyncio.Lock()

    def register(self) -> None:
        app = self.app
        app.agent(self.topics.results, name="aggregate-results")(self._agent)
        app.every(self.settings.flush_interval_s, "aggregate-flush", self.flush)
        app.when_revoked(self._on_revoked)
        app.drain_hooks.append(self.flush)

    async def _agent(self, stream: StreamT[bytes]) -> None:
        self._stream = stream
        async for event in cast("Stream[bytes]", stream).noack().events():
            work = await self._owned(event.message.tp)
            outcome = self._apply(work, event)
            self.metrics.batches.labels(outcome.value).inc()
            # Every event waits for the flush, whatever its outcome: Faust 0.15 commits the first
            # run of consecutive acked offsets even when it starts past an unacked one
            # (Consumer._new_offset), so acking out of order could commit unflushed input.
            work.held.append(event)

    async def _owned(self, tp: TP) -> PartitionWork:
        work = self._work.get(tp)
        if work is not None:
            return work
        task = self._opening.get(tp)
        if task is None:
            task = self._opening[tp] = asyncio.ensure_future(self._open(tp))
        try:
            work = await task
        finally:
            self._opening.pop(tp, None)
        self._work[tp] = work
        return work

    async def _open(self, tp: TP) -> PartitionWork:
        s = self.settings
        ledger = Ledger(
            s.kafka.bootstrap,
            f"{s.app_id}-aggregate-{tp.partition}",
            self.topics.aggregate_state,
            tp.partition,
        )
        raw = await ledger.open()
        state = _state_decoder.decode(raw) if raw else PartitionState()
        log.info(
            "took over %s at offset %d (%d engines known)", tp, state.offset, len(state.engines)
        )
        return PartitionWork(
            tp=tp,
            ledger=ledger,
            aggregator=Aggregator(s.max_labels_per_run, s.max_codes),
            state=state,
            seen=state.offset,
        )

    def _apply(self, work: PartitionWork, event: EventT[bytes]) -> Outcome:
        m = event.message
        if m.offset <= work.state.offset or m.offset <= work.seen:
            return Outcome.REPLAYED
        work.seen = m.offset
        try:
            batch = decode_batch(event.value)
        except DecodeError as exc:
            log.warning(
                "skipped malformed result message at %s[%d]@%d: %s",
                m.topic,
                m.partition,
                m.offset,
                exc.reason,
            )
            return Outcome.MALFORMED
        key = f"{batch.run_id}/{batch.engine_id}"
        mark = work.state.engines.get(key)
        if mark is not None and batch.seq <= mark.seq:
            return Outcome.DUPLICATE
        work.aggregator.add(batch)
        now_ms = int(time.time() * 1000)
        samples = len(batch) + (mark.samples if mark else 0)
        work.state.engines[key] = EngineMark(seq=batch.seq, samples=samples, seen_ms=now_ms)
        self.metrics.samples.inc(len(batch))
        return Outcome.APPLIED

    async def flush(self) -> None:
        """Commit every owned partition's partials; then ack the events they cover."""
        async with self._flush_lock:
            await asyncio.gather(*(self._flush(w) for w in list(self._work.values())))

    async def _flush(self, work: PartitionWork) -> None:
        if work.seen <= work.state.offset:
            await self._ack(work.held)  # replayed input only: nothing to commit
            work.held = []
            return
        # Swap out synchronously: the agent goes on adding to a fresh aggregator meanwhile.
        cells = work.aggregator.drain()
        held, work.held = work.held, []
        upto = work.seen
        self._expire_engines(work.state)
        state = msgspec.structs.replace(work.state, offset=upto, engines=dict(work.state.engines))
        source = f"{work.tp.topic}/{work.tp.partition}"
        records = [
            Record(self.topics.partials.get_topic_name(), run_key(p.run_id), encode(p))
            for p in partials_of(cells, source, upto)
        ]
        try:
            await work.ledger.commit(records, _state_encoder.encode(state))
        except FencedError:
            log.warning("%s was taken over by another worker; dropping its aggregates", work.tp)
            self.metrics.fenced.inc()
            await self._drop(work.tp)
            return
        work.state.offset = upto
        self.metrics.flushes.inc()
        await self._ack(held)

    async def _ack(self, events: list[EventT[bytes]]) -> None:
        if self._stream is not None:
            for event in events:
                await self._stream.ack(event)

    def _expire_engines(self, state: PartitionState) -> None:
        cutoff = int(time.time() * 1000) - self.settings.engine_ttl_s * 1000
        for key in [k for k, m in state.engines.items() if m.seen_ms < cutoff]:
            del state.engines[key]

    async def _on_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            work = self._work.get(tp)
            if work is not None:
                # Hand over with as little to redo as possible; a failure only means more replay.
                async with self._flush_lock:
                    await self._flush(work)
                await self._drop(tp)

    async def _drop(self, tp: TP) -> None:
        work = self._work.pop(tp, None)
        if work is not None:
            await work.ledger.close()


def register(
    app: App, settings: WorkerSettings, topics: Topics, registry: CollectorRegistry
) -> Aggregate:
    agg = Aggregate(app, settings, topics, AggregateMetrics(registry))
    agg.register()
    return agg


__all__ = ["Aggregate", "Outcome", "PartitionState", "faust", "register"]
