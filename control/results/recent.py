"""The API's reads of ClickHouse, each answer shared for a moment: many people watching one run
(dashboards, ``shibuya run`` in CI, the live stream) cost one query per second, not one per
request.

An answer is kept for ``ttl_s`` from when its query began, and callers asking while a query is
under way wait for that query instead of starting another. Nothing here is needed by another
replica: each keeps its own, and a restart loses nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from control.results.clickhouse import Store
from control.results.queries import Results, RunReport, Second
from wire import RunStatus

T = TypeVar("T")


class Recent:
    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.clock = ttl_s, clock
        self._entries: dict[Hashable, tuple[float, asyncio.Future[Any]]] = {}

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        now = self.clock()
        entry = self._entries.get(key)
        if entry is None or (entry[0] <= now and entry[1].done()):
            if len(self._entries) > 1000:
                self._entries = {k: e for k, e in self._entries.items()
                                 if e[0] > now or not e[1].done()}  # fmt: skip
            entry = (now + self.ttl_s, asyncio.ensure_future(compute()))
            self._entries[key] = entry
        try:
            result: T = await asyncio.shield(entry[1])
        except Exception:
            if self._entries.get(key) is entry:
                del self._entries[key]  # a failure is not remembered
            raise
        return result

    def forget(self, key: Hashable) -> None:
        """Drop an answer this replica has made stale (by a write of its own)."""
        self._entries.pop(key, None)


class RecentResults(Results):
    """:class:`Results` with answers shared for ``ttl_s`` (0: every call queries)."""

    def __init__(self, store: Store, ttl_s: float) -> None:
        super().__init__(store)
        self._recent = Recent(ttl_s)

    async def series(
        self,
        run_id: str,
        *,
        plan_id: str | None = None,
        label: str | None = None,
        since_s: int | None = None,
    ) -> list[Second]:
        return await self._recent.get(
            ("series", run_id, plan_id, label, since_s),
            lambda: Results.series(self, run_id, plan_id=plan_id, label=label, since_s=since_s),
        )

    async def report(self, run_id: str) -> RunReport:
        return await self._recent.get(("report", run_id), lambda: Results.report(self, run_id))

    async def run_status(self, run_id: str) -> RunStatus | None:
        return await self._recent.get(("status", run_id), lambda: Results.run_status(self, run_id))
