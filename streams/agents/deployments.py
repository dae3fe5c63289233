"""The deployments agent: idle-engine GC by the owner of each collection's partition.

It reads ``engine-status.v1`` (sidecar heartbeats) and ``commands.v1`` (start, stop, purge), both
keyed by collection, and keeps a table of deployed collections: when an engine was last busy or a
run last started, when the collection was last heard of, whether it was purged. The flush timer
emits one ``PurgeEngines`` (``commands.v1``; the control plane's scheduler executes it) for a
collection idle longer than ``gc_idle_s`` — Shibuya's ``autoPurgeDeployments`` without a leader.
The purge and the table are committed together, so a new owner after a rebalance does not purge
again; heartbeats within ``purge_settle_s`` of a purge come from engines going away, later ones
from a new deployment.

Its owner also tells the live views (``live.v1``) when each deployed collection will be purged
if it stays idle. It also forwards the statuses of engines in a run to ``run-events.v1``, keyed
by run, where the run's owner (:mod:`streams.agents.runs`) reads them, in the same transaction.
"""

from __future__ import annotations

import logging
import time
from typing import ClassVar

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge

from streams.agents.table import TableOwner, TableWork
from streams.app import App
from streams.gc import Collections
from streams.ledger import Record
from streams.outcomes import Outcome
from streams.settings import WorkerSettings
from streams.topics import FaustTopics
from wire import (
    Command,
    DecodeError,
    EngineStatus,
    PurgeDeadlines,
    collection_key,
    decode_command,
    decode_message,
    encode_message,
    run_key,
)
from wire.live import RESEND_S

log = logging.getLogger(__name__)


class DeploymentsState(Collections, kw_only=True):
    """The state record of one engine-status/commands partition: the GC's table (pure,
    :mod:`streams.gc`) and the offsets taken in."""

    v: int = 1
    offsets: dict[str, int] = msgspec.field(default_factory=dict)


class Deployments(TableOwner[DeploymentsState]):
    name = "deployments"
    state_type: ClassVar[type[DeploymentsState]] = DeploymentsState

    def __init__(
        self, app: App, settings: WorkerSettings, topics: FaustTopics, registry: CollectorRegistry
    ) -> None:
        super().__init__(app, settings, registry)
        self.topics = topics
        self.deployed = Gauge(
            "shibuya_collections_deployed",
            "deployed collections this worker watches",
            registry=registry,
        )
        self.purges = Counter(
            "shibuya_gc_purges", "purge commands emitted for idle collections", registry=registry
        )
        self._taken_ms: dict[int, int] = {}
        """When each owned partition was taken over."""
        self._told: dict[int, tuple[dict[str, int], int]] = {}
        """The purge deadlines last sent for each owned partition, and when."""

    def opened(self, work: TableWork[DeploymentsState]) -> None:
        self._taken_ms[work.tp.partition] = int(time.time() * 1000)
        self._told.pop(work.tp.partition, None)  # tell the live views at once

    def take(
        self, work: TableWork[DeploymentsState], topic: str, value: bytes, now_ms: int
    ) -> Outcome:
        message: Command | EngineStatus
        try:
            if topic == self.topics.commands:
                message = decode_command(value)
            else:
                message = decode_message(value, EngineStatus)
        except DecodeError as exc:
            log.warning("deployments: skipped a malformed message on %s: %s", topic, exc.reason)
            return Outcome.MALFORMED
        if not isinstance(message, EngineStatus):
            return Outcome.APPLIED if work.state.on_command(message) else Outcome.IGNORED
        if message.run_id is not None:  # the run's owner tracks its engines
            work.out.append(Record(self.topics.run_events, run_key(message.run_id), value))
        applied = work.state.on_status(message, self.settings.purge_settle_s)
        return Outcome.APPLIED if applied else Outcome.IGNORED

    def tick(self, work: TableWork[DeploymentsState], now_ms: int) -> None:
        s = self.settings
        self.deployed.set(sum(w.state.deployed() for w in self._work.values()))
        if now_ms - self._taken_ms.get(work.tp.partition, 0) < s.engine_lost_s * 1000:
            # Just taken over: the heartbeats sent while nobody owned the partition are still
            # being read; the table says nothing about idleness until they are.
            return
        purges, forgot = work.state.due(now_ms, s.gc_idle_s, s.ended_run_ttl_s)
        work.changed |= forgot
        for purge in purges:
            key = collection_key(purge.collection_id)
            work.out.append(Record(self.topics.commands, key, encode_message(purge)))
            self.purges.inc()
            log.info("collection %s: purge (%s)", purge.collection_id, purge.reason)
        self._tell_deadlines(work, now_ms)

    def _tell_deadlines(self, work: TableWork[DeploymentsState], now_ms: int) -> None:
        """Send the partition's purge deadlines to the live views when they changed, and every
        ``RESEND_S`` while there are any."""
        deadlines = work.state.deadlines(self.settings.gc_idle_s)
        told, told_ms = self._told.get(work.tp.partition, ({}, 0))
        if deadlines == told and (not told or now_ms - told_ms < RESEND_S * 1000):
            return
        self._told[work.tp.partition] = (deadlines, now_ms)
        source = f"{self.topics.commands}/{work.tp.partition}"
        message = PurgeDeadlines(source=source, deadlines_ms=deadlines)
        work.out.append(Record(self.topics.live, collection_key(source.replace("/", "@")),
                               encode_message(message)))  # fmt: skip


def register(
    app: App, settings: WorkerSettings, topics: FaustTopics, registry: CollectorRegistry
) -> Deployments:
    deployments = Deployments(app, settings, topics, registry)
    deployments.register(topics.deployments_source)
    return deployments
