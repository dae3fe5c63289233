"""Provisional rows of running runs, heard from ``live.v1``, for the live views (:mod:`wire.live`).

Every replica follows the topic without a group (each hears every run; the topic keeps minutes,
which a replica reads when it starts) and keeps,
per run, the latest row of each open second per (plan, label) — until that second closes (its
final row is then in ClickHouse, or on its way) or the run has said nothing for ``forget_s``.
A live stream waits on :meth:`LiveRows.changed` and reads :meth:`LiveRows.rows`. The stream's
idle-engine purge deadlines come the same way (:meth:`LiveRows.purge_at_ms`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from control.kafka import Follower, Incoming
from control.settings import KafkaSettings
from wire import DecodeError, LiveRow, LiveSeconds, decode_live

log = logging.getLogger(__name__)

RowKey = tuple[str | None, str | None, int]  # plan, label, second


@dataclass
class _Run:
    closed_s: int = -1
    rows: dict[RowKey, LiveRow] = field(default_factory=dict)
    heard: float = 0.0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class LiveRows:
    """What this replica heard of each run's open seconds."""

    def __init__(self, forget_s: float = 600.0) -> None:
        self._runs: dict[str, _Run] = {}
        self._forget_s = forget_s
        self._deadlines: dict[str, dict[str, int]] = {}
        """Purge deadlines (ms) per collection, per source partition."""

    async def receive(self, records: list[Incoming]) -> None:
        """A follower's handler: keep each message's rows, drop the seconds it says closed."""
        now = time.monotonic()
        woken: set[str] = set()
        for r in records:
            try:
                live = decode_live(r.value or b"")
            except DecodeError as exc:
                log.warning("skipped malformed live rows at %s[%d]@%d: %s", r.topic,
                            r.partition, r.offset, exc.reason)  # fmt: skip
                continue
            if not isinstance(live, LiveSeconds):
                self._deadlines[live.source] = live.deadlines_ms
                continue
            run = self._runs.setdefault(live.run_id, _Run())
            run.heard = now
            if live.closed_s > run.closed_s:
                run.closed_s = live.closed_s
                run.rows = {k: v for k, v in run.rows.items() if k[2] > live.closed_s}
            for row in live.rows:
                if row.second_s > run.closed_s:
                    run.rows[(row.plan_id, row.label, row.second_s)] = row
            woken.add(live.run_id)
        for run_id in woken:  # wake the streams waiting on these runs
            run = self._runs[run_id]
            run.changed.set()
            run.changed = asyncio.Event()
        for run_id in [k for k, v in self._runs.items() if now - v.heard > self._forget_s]:
            del self._runs[run_id]

    def rows(
        self, run_id: str, *, plan_id: str | None, label: str | None, since_s: int
    ) -> list[LiveRow]:
        """The open seconds from ``since_s`` on, oldest first, of the whole run (no plan, no
        label), a plan's label, or a label — unless the label is in more than one plan in a
        second: its rows add up across plans, and percentiles do not, so such seconds wait for
        their final rows."""
        run = self._runs.get(run_id)
        if run is None:
            return []
        if label is None:
            plan_id = None  # the run's total: plan rows are not kept apart
        found: dict[int, list[LiveRow]] = {}
        for (plan, lab, second), row in run.rows.items():
            if second >= since_s and lab == label and (plan_id is None or plan == plan_id):
                found.setdefault(second, []).append(row)
        return [rows[0] for _, rows in sorted(found.items()) if len(rows) == 1]

    def purge_at_ms(self, collection_id: str) -> int | None:
        """When the stream will purge the collection's engines if they stay idle (if told)."""
        found = [d[collection_id] for d in self._deadlines.values() if collection_id in d]
        return max(found, default=None)

    async def changed(self, run_id: str, timeout_s: float) -> None:
        """Return when rows of the run arrive, or after ``timeout_s``."""
        run = self._runs.setdefault(run_id, _Run(heard=time.monotonic()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.changed.wait(), timeout_s)


def live_follower(kafka: KafkaSettings, live: LiveRows) -> Follower:
    """Every partition of ``live.v1``, without a group: each replica hears all."""
    return Follower(kafka, [kafka.topics.live], None, live.receive, name="live rows",
                    max_records=1000, poll_ms=200, fetch_wait_ms=50)  # fmt: skip
