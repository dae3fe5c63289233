"""The deployments agent: idle-engine GC by the owner of each collection's partition.

It reads ``engine-status.v1`` (sidecar heartbeats) and ``commands.v1`` (start, stop, purge), both
keyed by collection, and keeps a table of deployed collections: when an engine was last busy or a
run last started, when the collection was last heard of, whether it was purged. The flush timer
emits one ``PurgeEngines`` (``commands.v1``; the control plane's scheduler executes it) for a
collection idle longer than ``gc_idle_s`` — Shibuya's ``autoPurgeDeployments`` without a leader.
The purge and the table are committed together, so a new owner after a rebalance does not purge
again; heartbeats within ``purge_settle_s`` of a purge come from engines going away, later ones
from a new deployment.

It also forwards the statuses of engines in a run to ``run-events.v1``, keyed by run, where the
run's owner (:mod:`streams.agents.runs`) reads them, in the same transaction.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge

from streams.agents.table import TableOwner, TableWork
from streams.faust_app import App
from streams.ledger import Record
from streams.settings import WorkerSettings
from streams.topics import Topics
from streams.wire import (
    DecodeError,
    EngineState,
    EngineStatus,
    PurgeEngines,
    StartEngines,
    collection_key,
    decode_command,
    decode_message,
    encode_message,
    run_key,
)

log = logging.getLogger(__name__)

BUSY = frozenset({EngineState.PREPARING, EngineState.RUNNING, EngineState.STOPPING})


class Deployment(msgspec.Struct, kw_only=True):
    busy_ms: int
    """When an engine was last busy, a run last started, or the collection was deployed."""
    heard_ms: int
    purged_ms: int | None = None


class DeploymentsState(msgspec.Struct, kw_only=True):
    v: int = 1
    offsets: dict[str, int] = {}
    collections: dict[str, Deployment] = {}


class Deployments(TableOwner[DeploymentsState]):
    name = "deployments"
    state_type: ClassVar[type[DeploymentsState]] = DeploymentsState

    def __init__(
        self, app: App, settings: WorkerSettings, topics: Topics, registry: CollectorRegistry
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

    def take(self, work: TableWork[DeploymentsState], topic: str, value: bytes, now_ms: int) -> str:
        table = work.state.collections
        try:
            if topic == self.topics.commands:
                command = decode_command(value)
            else:
                status = decode_message(value, EngineStatus)
        except DecodeError as exc:
            log.warning("deployments: skipped a malformed message on %s: %s", topic, exc.reason)
            return "malformed"
        if topic == self.topics.commands:
            d = table.get(command.collection_id)
            if isinstance(command, StartEngines):
                d = table.setdefault(
                    command.collection_id, Deployment(busy_ms=command.issued_ms, heard_ms=0)
                )
                d.busy_ms = max(d.busy_ms, command.issued_ms)
                d.purged_ms = None
            elif isinstance(command, PurgeEngines) and d is not None:
                d.purged_ms = max(d.purged_ms or 0, command.issued_ms)
            else:
                return "ignored"
            return "applied"
        if status.run_id is not None:
            work.out.append(Record(self.topics.run_events, run_key(status.run_id), value))
        d = table.get(status.collection_id)
        if d is None:
            d = table[status.collection_id] = Deployment(busy_ms=status.ts_ms, heard_ms=0)
        elif d.purged_ms is not None:
            if status.ts_ms <= d.purged_ms + self.settings.purge_settle_s * 1000:
                return "ignored"  # an engine going away
            d.purged_ms, d.busy_ms = None, status.ts_ms  # deployed again
        d.heard_ms = max(d.heard_ms, status.ts_ms)
        if status.state in BUSY:
            d.busy_ms = max(d.busy_ms, status.ts_ms)
        return "applied"

    def tick(self, work: TableWork[DeploymentsState], now_ms: int) -> None:
        s = self.settings
        table = work.state.collections
        for collection_id, d in list(table.items()):
            if d.purged_ms is None and now_ms - d.busy_ms >= s.gc_idle_s * 1000:
                d.purged_ms = now_ms
                idle_s = (now_ms - d.busy_ms) // 1000
                purge = PurgeEngines(
                    command_id=f"{collection_id}.gc.{d.busy_ms}",  # one per idle period
                    collection_id=collection_id,
                    reason=f"idle for {idle_s} s (gc after {s.gc_idle_s} s)",
                    issued_ms=now_ms,
                )
                work.out.append(
                    Record(
                        self.topics.commands, collection_key(collection_id), encode_message(purge)
                    )
                )
                self.purges.inc()
                log.info("collection %s: purge (%s)", collection_id, purge.reason)
            elif d.purged_ms is not None and now_ms - d.purged_ms > s.ended_run_ttl_s * 1000:
                del table[collection_id]  # purged and quiet: forget it
                work.changed = True
        self.deployed.set(
            sum(
                d.purged_ms is None
                for w in self._work.values()
                for d in w.state.collections.values()
            )
        )


def register(
    app: App, settings: WorkerSettings, topics: Topics, registry: CollectorRegistry
) -> Deployments:
    deployments = Deployments(app, settings, topics, registry)
    deployments.register(topics.deployments_source)
    return deployments
