"""Ingest raw result batches: decode, drop redeliveries by (engine, sequence), count.

A malformed message is counted and logged with its reason and position; the stream goes on.
"""

from __future__ import annotations

import logging
from enum import StrEnum

import faust
from faust.types import EventT, TableT
from prometheus_client import CollectorRegistry, Counter

from streams.tables import Tables
from streams.topics import Topics
from streams.wire import DecodeError, decode_batch

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    MALFORMED = "malformed"


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.samples = Counter("shibuya_ingest_samples", "samples counted", registry=registry)
        self.batches = Counter(
            "shibuya_ingest_batches", "result batches by outcome", ["outcome"], registry=registry
        )
        for outcome in Outcome:  # export zeros, so rates and alerts work from the start
            self.batches.labels(outcome.value)


def register(app: faust.App, topics: Topics, tables: Tables, metrics: IngestMetrics) -> None:
    progress = tables.engine_progress

    @app.agent(topics.results, name="ingest-results")
    async def ingest(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            outcome = _apply(event, progress, metrics)
            metrics.batches.labels(outcome.value).inc()
            # Faust acks an event only when the agent asks for the next one, so without this
            # the last event of each partition stays uncommitted at shutdown and comes again.
            await stream.ack(event)


def _apply(
    event: EventT[bytes], progress: TableT[str, dict[str, int]], metrics: IngestMetrics
) -> Outcome:
    try:
        batch = decode_batch(event.value)
    except DecodeError as exc:
        m = event.message
        log.warning(
            "skipped malformed result message at %s[%d]@%d: %s",
            m.topic,
            m.partition,
            m.offset,
            exc.reason,
        )
        return Outcome.MALFORMED
    key = f"{batch.run_id}/{batch.engine_id}"
    state = progress.get(key) or {"seq": -1, "samples": 0}
    if batch.seq <= state["seq"]:
        return Outcome.DUPLICATE
    progress[key] = {"seq": batch.seq, "samples": state["samples"] + len(batch)}
    metrics.samples.inc(len(batch))
    return Outcome.APPLIED
