"""Agents whose state is a small table per partition, committed whole with their output.

The runs and deployments agents read a few messages a second per run or collection (events,
heartbeats, final rows), keep a table of what they track, act on a clock, and emit commands.
Each flush commits, in one transaction (:class:`~streams.ledger.Ledger`), the records it emits and
the partition's state record: the table plus the offset taken in per source topic. A new owner
reads that record back, skips input at or below those offsets, and so neither forgets nor repeats
what the previous owner committed — a stop or a purge is emitted once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import msgspec
from faust.types import TP, EventT
from prometheus_client import CollectorRegistry, Counter

from streams.agents.owner import PartitionOwner
from streams.app import App
from streams.ledger import Ledger, Record
from streams.outcomes import Outcome
from streams.settings import WorkerSettings

log = logging.getLogger(__name__)


class TableState(Protocol):
    offsets: dict[str, int]
    """The last offset taken in, per source topic."""


S = TypeVar("S", bound=TableState)


@dataclass
class TableWork(Generic[S]):
    tp: TP
    ledger: Ledger
    state: S
    offsets: dict[str, int] = field(default_factory=dict)
    """Taken in since the last commit (the state record has the committed ones)."""
    held: list[EventT[bytes]] = field(default_factory=list)
    out: list[Record] = field(default_factory=list)
    changed: bool = False
    """The table changed in a way worth a commit even without new input (the clock acted)."""


class TableMetrics:
    def __init__(self, name: str, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            f"shibuya_{name}_messages",
            f"messages taken in by the {name} agent, by outcome",
            ["outcome"],
            registry=registry,
        )
        for outcome in (Outcome.APPLIED, Outcome.IGNORED, Outcome.MALFORMED, Outcome.REPLAYED):
            self.messages.labels(outcome.value)


class TableOwner(PartitionOwner[TableWork[S]]):
    state_type: ClassVar[type[Any]]

    def __init__(self, app: App, settings: WorkerSettings, registry: CollectorRegistry) -> None:
        super().__init__(app, settings)
        self.counts = TableMetrics(self.name, registry)
        self._decoder = msgspec.json.Decoder(self.state_type)
        self._encoder = msgspec.json.Encoder()

    def positions(self) -> dict[TP, int]:
        return {
            TP(topic, w.tp.partition): offset + 1
            for w in self._work.values()
            for topic, offset in {**w.state.offsets, **w.offsets}.items()
        }

    async def open(self, tp: TP) -> TableWork[S]:
        ledger = self.ledger(tp)
        raw = await ledger.open()
        state = self._decoder.decode(raw) if raw else self.state_type()
        log.info("%s: took over partition %d", self.name, tp.partition)
        work: TableWork[S] = TableWork(tp=tp, ledger=ledger, state=state)
        self.opened(work)
        return work

    def opened(self, work: TableWork[S]) -> None:
        """A partition was taken over: rebuild what is derived from its table."""

    def apply(self, work: TableWork[S], event: EventT[bytes]) -> None:
        m = event.message
        work.held.append(event)  # acked once the flush covering it is committed
        if m.offset <= max(work.state.offsets.get(m.topic, -1), work.offsets.get(m.topic, -1)):
            self.counts.messages.labels(Outcome.REPLAYED.value).inc()
            return
        work.offsets[m.topic] = m.offset
        outcome = self.take(work, m.topic, event.value, int(time.time() * 1000))
        self.counts.messages.labels(outcome.value).inc()

    def take(self, work: TableWork[S], topic: str, value: bytes, now_ms: int) -> Outcome:
        """Apply one message; return its outcome: applied, ignored or malformed."""
        raise NotImplementedError

    def tick(self, work: TableWork[S], now_ms: int) -> None:
        """The clock: act on the table (append to ``work.out``, set ``work.changed``)."""

    async def flush_one(self, work: TableWork[S]) -> None:
        self.tick(work, int(time.time() * 1000))
        held, work.held = work.held, []
        if not (work.out or work.offsets or work.changed):
            await self.ack(held)  # replayed input only
            return
        out, work.out = work.out, []
        offsets, work.offsets = work.offsets, {}
        work.changed = False
        work.state.offsets.update(offsets)  # a failed commit drops the work (fenced)
        await work.ledger.commit(out, self._encoder.encode(work.state))
        await self.ack(held)
