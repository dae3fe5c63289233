"""Which deployed collections are idle: the partition-owner GC's table, pure.

Fed engine heartbeats and commands of the collections a worker owns, it tells when one has had no
busy engine (preparing, running, stopping) and no run start for ``idle_s``, and purges it once:
the purge's id is derived from the idle period, and a purged collection is not purged again until
it is deployed again — which heartbeats newer than ``settle_s`` after the purge say (older ones
come from engines going away; a sidecar's last heartbeat, marked ``exiting``, never counts). A
collection silent for longer than ``settle_s`` that is heard again was deployed anew too (its
engines went away without a purge): its idle time starts over.
:mod:`streams.agents.deployments` feeds it and commits it with the purges it emits, so a new
owner neither forgets nor repeats one. Nothing here does I/O."""

from __future__ import annotations

import msgspec

from wire import (
    Command,
    EngineState,
    EngineStatus,
    PurgeEngines,
    StartEngines,
)

BUSY = frozenset({EngineState.PREPARING, EngineState.RUNNING, EngineState.STOPPING})


class Deployment(msgspec.Struct, kw_only=True):
    busy_ms: int
    """When an engine was last busy, a run last started, or the collection was deployed."""
    heard_ms: int = 0
    purged_ms: int | None = None


class Collections(msgspec.Struct, kw_only=True):
    collections: dict[str, Deployment] = {}

    def on_status(self, status: EngineStatus, settle_s: int) -> bool:
        """Apply a heartbeat; False if it came from an engine of a purged deployment, or was a
        sidecar's last (it says an engine went away, not that the collection is deployed)."""
        if status.exiting:
            return False
        d = self.collections.get(status.collection_id)
        if d is None:
            d = self.collections[status.collection_id] = Deployment(busy_ms=status.ts_ms)
        elif d.purged_ms is not None:
            if status.ts_ms <= d.purged_ms + settle_s * 1000:
                return False
            d.purged_ms, d.busy_ms = None, status.ts_ms  # deployed again
        elif d.heard_ms and status.ts_ms - d.heard_ms > settle_s * 1000:
            d.busy_ms = max(d.busy_ms, status.ts_ms)  # silent that long: engines deployed anew
        d.heard_ms = max(d.heard_ms, status.ts_ms)
        if status.state in BUSY:
            d.busy_ms = max(d.busy_ms, status.ts_ms)
        return True

    def on_command(self, command: Command) -> bool:
        """A run start keeps a collection busy; any purge (the GC's or a user's) ends it."""
        d = self.collections.get(command.collection_id)
        if isinstance(command, StartEngines):
            if d is None:
                d = self.collections[command.collection_id] = Deployment(busy_ms=command.issued_ms)
            d.busy_ms, d.purged_ms = max(d.busy_ms, command.issued_ms), None
            return True
        if isinstance(command, PurgeEngines) and d is not None:
            d.purged_ms = max(d.purged_ms or 0, command.issued_ms)
            return True
        return False

    def due(self, now_ms: int, idle_s: int, forget_s: int) -> tuple[list[PurgeEngines], bool]:
        """Purges of the collections idle for ``idle_s``; and whether the table changed
        otherwise (collections purged more than ``forget_s`` ago are forgotten)."""
        purges, forgot = [], False
        for collection_id, d in list(self.collections.items()):
            if d.purged_ms is None and now_ms - d.busy_ms >= idle_s * 1000:
                d.purged_ms = now_ms
                purges.append(
                    PurgeEngines(
                        command_id=f"{collection_id}.gc.{d.busy_ms}",  # one per idle period
                        collection_id=collection_id,
                        reason=f"idle for {(now_ms - d.busy_ms) // 1000} s (gc after {idle_s} s)",
                        issued_ms=now_ms,
                    )
                )
            elif d.purged_ms is not None and now_ms - d.purged_ms > forget_s * 1000:
                del self.collections[collection_id]
                forgot = True
        return purges, forgot

    def deadlines(self, idle_s: int) -> dict[str, int]:
        """When each deployed collection is purged unless an engine is busy before (ms)."""
        return {c: d.busy_ms + idle_s * 1000 for c, d in self.collections.items()
                if d.purged_ms is None}  # fmt: skip

    def deployed(self) -> int:
        return sum(d.purged_ms is None for d in self.collections.values())
