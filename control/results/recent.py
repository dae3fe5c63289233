"""The API's reads of ClickHouse, each answer shared for a moment: many people watching one run
(dashboards, ``shibuya run`` in CI, the live stream) cost one query per second, not one per
request.

An answer is kept for ``ttl_s`` from when its query began, and callers asking while a query is
under way wait for that query instead of starting another — or, with ``serve_stale``, get the
previous answer (if it expired less than ``ttl_s`` ago) while the new one is made, so that no
caller waits for the rebuild that comes every ``ttl_s`` (an answer is then at most about two
``ttl_s`` old; :meth:`Recent.forget` still drops one at once). Nothing here is needed by another
replica: each keeps its own, and a restart loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from control.results.clickhouse import Store
from control.results.queries import Results, RunReport, Second
from wire import RunStatus

T = TypeVar("T")


@dataclass
class _Entry(Generic[T]):
    expires: float
    future: asyncio.Future[T]
    stale: tuple[T] | None = None
    """The previous answer, served while ``future`` is made (``serve_stale``)."""


class Recent:
    def __init__(
        self, ttl_s: float, clock: Callable[[], float] = time.monotonic, *,
        serve_stale: bool = False,
    ) -> None:  # fmt: skip
        self.ttl_s, self.clock, self.serve_stale = ttl_s, clock, serve_stale
        self._entries: dict[Hashable, _Entry[Any]] = {}

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        now = self.clock()
        entry = self._entries.get(key)
        if entry is None or (entry.expires <= now and entry.future.done()):
            if len(self._entries) > 1000:
                self._entries = {k: e for k, e in self._entries.items()
                                 if e.expires > now or not e.future.done()}  # fmt: skip
            stale = None
            if self.serve_stale and entry is not None and now < entry.expires + self.ttl_s:
                stale = _result(entry.future)
            entry = _Entry(now + self.ttl_s, asyncio.ensure_future(compute()), stale)
            entry.future.add_done_callback(_result)  # a failure nobody awaits is not logged
            self._entries[key] = entry
        if entry.stale is not None and not entry.future.done():
            return entry.stale[0]  # type: ignore[no-any-return]
        try:
            result: T = await asyncio.shield(entry.future)
        except Exception:
            if self._entries.get(key) is entry:
                del self._entries[key]  # a failure is not remembered
            raise
        return result

    def forget(self, key: Hashable) -> None:
        """Drop an answer this replica has made stale (by a write of its own)."""
        self._entries.pop(key, None)


def _result(future: asyncio.Future[T]) -> tuple[T] | None:
    """A finished future's answer (in a 1-tuple), or None if it failed or was cancelled."""
    with contextlib.suppress(Exception, asyncio.CancelledError):
        return (future.result(),)
    return None


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
