"""Samples counted per engine, as any operator view may read them: from the aggregate agent's
state records (``<app_id>-aggregate-state``, committed with each flush of partials)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import msgspec

from shibuya.dev import kafka_io
from streams.agents.aggregate import PartitionState
from streams.topics import state_topic

_decoder = msgspec.json.Decoder(PartitionState)


@contextlib.asynccontextmanager
async def engine_counts(
    bootstrap: str, app_id: str
) -> AsyncIterator[AsyncIterator[dict[str, int]]]:
    """Samples counted so far per ``<run>/<engine>``, again after every committed flush.

    A context manager, so the consumer is closed however the reading loop ends.
    """
    topic = state_topic(app_id, "aggregate")
    await kafka_io.wait_for_topics(bootstrap, [topic], timeout_s=60)
    async with kafka_io.read_from_start(bootstrap, topic) as records:

        async def counts() -> AsyncIterator[dict[str, int]]:
            seen: dict[str, int] = {}
            async for record in records:
                if record.value is not None:
                    state = _decoder.decode(record.value)
                    seen.update({key: mark.samples for key, mark in state.engines.items()})
                    yield dict(seen)

        yield counts()
