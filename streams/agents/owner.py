"""What every agent shares: owning input partitions, each with its own :class:`Ledger`.

An agent subclass says how to open a partition's work (read its state record back), how to apply
an event, and how to flush; this base runs the Faust agent over ``noack`` events, opens a
partition the first time one of its events arrives (fencing its previous owner), flushes every
owned partition on a timer, on a rebalance before a partition is handed over, and at shutdown,
and drops a partition's memory when another worker has taken it over.

An agent may read several topics with the same key and partition count: Faust assigns partition
*p* of all of them to one worker, so the work is per partition number — one ledger and one state
record covering partition *p* of each source topic.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Generic, Protocol, TypeVar, cast

import faust
from faust import Stream
from faust.types import TP, EventT, StreamT

from streams.app import App
from streams.errors import FencedError, StateTooLargeError
from streams.ledger import Ledger
from streams.settings import WorkerSettings
from streams.topics import state_topic

log = logging.getLogger(__name__)


class Work(Protocol):
    tp: TP
    ledger: Ledger


W = TypeVar("W", bound=Work)


class PartitionOwner(Generic[W]):
    name: str
    """The agent's name; also names its transactional ids (``<app_id>-<name>-<partition>``)."""
    flush_phase: float = 0.0
    """When the agent flushes, as a fraction of the flush interval past each multiple of it on
    the wall clock (:meth:`streams.app.App.every`): after the agents whose output it reads."""

    def __init__(self, app: App, settings: WorkerSettings) -> None:
        self.app = app
        self.settings = settings
        self.state_topic = state_topic(settings.app_id, self.name)
        self._work: dict[int, W] = {}
        self._opening: dict[int, asyncio.Task[W]] = {}
        self._stream: StreamT[bytes] | None = None
        self._flush_lock = asyncio.Lock()

    def register(self, source: faust.TopicT) -> None:
        self.app.agent(source, name=self.name)(self._agent)
        self.app.every(self.settings.flush_interval_s, f"{self.name}-flush", self.flush,
                       self.flush_phase)  # fmt: skip
        self.app.when_revoked(self._on_revoked)
        self.app.drain_hooks.append(self.flush)

    def ledger(self, tp: TP) -> Ledger:
        s = self.settings
        return Ledger(
            s.kafka.access,
            f"{s.app_id}-{self.name}-{tp.partition}",
            self.state_topic,
            tp.partition,
            compression=s.kafka.compression,
        )

    async def _agent(self, stream: StreamT[bytes]) -> None:
        self._stream = stream
        async for event in cast("Stream[bytes]", stream).noack().events():
            self.apply(await self._owned(event.message.tp), event)

    async def _owned(self, tp: TP) -> W:
        work = self._work.get(tp.partition)
        if work is not None:
            return work
        task = self._opening.get(tp.partition)
        if task is None:
            task = self._opening[tp.partition] = asyncio.ensure_future(self.open(tp))
        try:
            work = await task
        finally:
            self._opening.pop(tp.partition, None)
        self._work[tp.partition] = work
        return work

    async def open(self, tp: TP) -> W:
        """The work of a partition just taken over (``tp`` is the first of its topic partitions
        to deliver an event), from its state record."""
        raise NotImplementedError

    def apply(self, work: W, event: EventT[bytes]) -> None:
        raise NotImplementedError

    async def flush_one(self, work: W) -> None:
        """Commit what the partition holds (raise :class:`FencedError` if taken over)."""
        raise NotImplementedError

    def dropped(self, work: W) -> None:
        """The partition is no longer ours: forget what is derived from it."""

    def fenced(self, work: W) -> None:
        """Another worker took the partition over before we could commit (counted by agents)."""

    async def flush(self) -> None:
        async with self._flush_lock:
            await asyncio.gather(*(self._flush(w) for w in list(self._work.values())))

    async def _flush(self, work: W) -> None:
        try:
            await self.flush_one(work)
        except FencedError:
            log.warning("%s: a partition was taken over by another worker; dropping it", self.name)
            self.fenced(work)
            await self._drop(work)
        except StateTooLargeError as exc:
            log.critical("%s: %s; the agent stops (a bound of its table is wrong)", self.name, exc)
            raise

    async def ack(self, events: list[EventT[bytes]]) -> None:
        """Ack in the order given, which must be offset order: Faust 0.15 commits the first run
        of consecutive acked offsets even when it starts past an unacked one
        (``Consumer._new_offset``), so an out-of-order ack could commit unflushed input."""
        if self._stream is not None:
            for event in events:
                await self._stream.ack(event)

    async def _on_revoked(self, revoked: set[TP]) -> None:
        for partition in {tp.partition for tp in revoked}:
            work = self._work.get(partition)
            if work is not None:
                # Hand over with as little to redo as possible; a failure only means more replay.
                async with self._flush_lock:
                    await self._flush(work)
                await self._drop(work)

    async def _drop(self, work: W) -> None:
        if self._work.get(work.tp.partition) is work:
            del self._work[work.tp.partition]
            self.dropped(work)
            await work.ledger.close()
