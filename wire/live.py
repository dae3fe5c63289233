"""Provisional rows for live views: what a run's open seconds hold so far.

Final rows (:class:`~wire.SecondMetrics`) wait for the grace period, so that every engine's
samples of a second are in; a live chart cannot wait that long. At each flush the owner of a run
also sends, on ``live.v1``, one :class:`LiveSeconds` with the rows of the seconds that changed
since its previous one and are still open: the whole content of each such second so far (not a
delta), so a newer row of a second replaces an older one, and the final row replaces both.
Provisional rows are never stored; percentiles travel computed (a live view needs no histogram).
The owners of collections' partitions send their idle-engine purge deadlines here too.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from wire.messages import Id, NonNegative, _decode, _Message

Ms = Annotated[float, msgspec.Meta(ge=0)]


class LiveRow(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """One open second of a (plan, label), or of the whole run (``None``, ``None``), so far."""

    plan_id: Id | None
    label: str | None
    second_s: NonNegative
    count: NonNegative
    failures: NonNegative
    bytes_recv: NonNegative
    bytes_sent: NonNegative
    elapsed_sum_ms: NonNegative
    threads_max: NonNegative
    elapsed: tuple[Ms, Ms, Ms, Ms, Ms]
    """p50, p90, p95, p99 and p99.9 of the elapsed time (ms)."""


class LiveSeconds(_Message, tag="live_seconds", frozen=True, kw_only=True):
    """The provisional rows of one run's seconds that changed since the previous message."""

    v: Literal[1] = 1
    run_id: Id
    closed_s: int
    """Every second up to this one is closed: its final row is (or will be) on ``metrics.v1``."""
    rows: list[LiveRow]


class PurgeDeadlines(_Message, tag="purge_deadlines", frozen=True, kw_only=True):
    """When the stream will purge each deployed collection of one partition if it stays idle:
    sent by the partition's owner when a deadline changes, and every ``RESEND_S`` besides (the
    topic keeps minutes; a replica starting learns them within that)."""

    v: Literal[1] = 1
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    """``<topic>/<partition>`` of the collections: this message replaces that source's last."""
    deadlines_ms: dict[str, NonNegative]
    """Per deployed collection: when its engines are purged unless they run before."""


RESEND_S = 30

LiveMessage = LiveSeconds | PurgeDeadlines
"""What travels on ``live.v1``."""


def decode_live(data: bytes) -> LiveMessage:
    message: LiveMessage = _decode(data, LiveMessage)
    return message
