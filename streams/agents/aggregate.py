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

import logging
import time
from dataclasses import dataclass, field

import msgspec
from faust.types import TP, EventT
from prometheus_client import CollectorRegistry, Counter

from streams.agents.owner import PartitionOwner
from streams.aggregate import Aggregator
from streams.app import App
from streams.ledger import Ledger, Record
from streams.merge import encode, partials_of
from streams.outcomes import Outcome
from streams.settings import WorkerSettings
from streams.topics import FaustTopics
from wire import DecodeError, decode_batch, run_key

log = logging.getLogger(__name__)


class EngineMark(msgspec.Struct, array_like=True):
    seq: int
    samples: int
    seen_ms: int
    last: bool = False
    """Its last batch of the run is applied (the sidecar has stopped)."""


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
        # Export zeros, so rates and alerts work from the start.
        for outcome in (Outcome.APPLIED, Outcome.DUPLICATE, Outcome.MALFORMED, Outcome.REPLAYED):
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
    ended: set[str] = field(default_factory=set)
    """Runs of which an engine's last batch was applied since the previous flush."""


class Aggregate(PartitionOwner[PartitionWork]):
    """The aggregate agent and its flush timer, over the results partitions this worker owns."""

    name = "aggregate"
    flush_phase = 0.6  # after the sidecars' send tick (wire.ticks.SEND_PHASE)

    def __init__(
        self, app: App, settings: WorkerSettings, topics: FaustTopics, metrics: AggregateMetrics
    ) -> None:
        super().__init__(app, settings)
        self.topics = topics
        self.metrics = metrics

    def positions(self) -> dict[TP, int]:
        """The next offset to take in, per owned partition (for the lag gauge)."""
        return {w.tp: w.seen + 1 for w in self._work.values()}

    async def open(self, tp: TP) -> PartitionWork:
        ledger = self.ledger(tp)
        raw = await ledger.open()
        state = _state_decoder.decode(raw) if raw else PartitionState()
        log.info(
            "took over %s at offset %d (%d engines known)", tp, state.offset, len(state.engines)
        )
        s = self.settings
        return PartitionWork(
            tp=tp,
            ledger=ledger,
            aggregator=Aggregator(s.max_labels_per_run, s.max_codes),
            state=state,
            seen=state.offset,
        )

    def apply(self, work: PartitionWork, event: EventT[bytes]) -> None:
        outcome = self._apply(work, event)
        self.metrics.batches.labels(outcome.value).inc()
        work.held.append(event)  # every event waits for the flush, whatever its outcome

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
        work.state.engines[key] = EngineMark(batch.seq, samples, now_ms, last=batch.last)
        if batch.last:
            work.ended.add(batch.run_id)
        self.metrics.samples.inc(len(batch))
        return Outcome.APPLIED

    async def flush_one(self, work: PartitionWork) -> None:
        """Commit the partition's partials and state; then ack the events they cover."""
        if work.seen <= work.state.offset:
            held, work.held = work.held, []
            await self.ack(held)  # replayed input only: nothing to commit
            return
        # Swap out synchronously: the agent goes on adding to a fresh aggregator meanwhile.
        cells = work.aggregator.drain_columns()
        held, work.held = work.held, []
        done, work.ended = finished_runs(work.state.engines, work.ended), set()
        upto = work.seen
        self._expire_engines(work.state)
        state = msgspec.structs.replace(work.state, offset=upto, engines=dict(work.state.engines))
        source = f"{work.tp.topic}/{work.tp.partition}"
        records = [
            Record(self.topics.partials.get_topic_name(), run_key(p.run_id), encode(p))
            for p in partials_of(cells, source, upto, done)
        ]
        await work.ledger.commit(records, _state_encoder.encode(state))
        work.state.offset = upto
        self.metrics.flushes.inc()
        await self.ack(held)

    def fenced(self, work: PartitionWork) -> None:
        self.metrics.fenced.inc()

    def _expire_engines(self, state: PartitionState) -> None:
        cutoff = int(time.time() * 1000) - self.settings.engine_ttl_s * 1000
        for key in [k for k, m in state.engines.items() if m.seen_ms < cutoff]:
            del state.engines[key]


def finished_runs(engines: dict[str, EngineMark], runs: set[str]) -> set[str]:
    """Those of ``runs`` whose every engine on this partition has sent its last batch."""
    done = set(runs)
    if done:
        for key, mark in engines.items():
            if not mark.last:
                done.discard(key.partition("/")[0])
    return done


def register(
    app: App, settings: WorkerSettings, topics: FaustTopics, registry: CollectorRegistry
) -> Aggregate:
    agg = Aggregate(app, settings, topics, AggregateMetrics(registry))
    agg.register(topics.results)
    return agg
