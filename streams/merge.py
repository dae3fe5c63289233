"""Merge per run: partials from every partition → final per-second rows, each emitted once.

The pure core of the merge agent (``streams/agents/merge.py``), tested without Kafka.

The aggregate agent of each results partition (a *source*) sends, once per flush, one
:class:`Partial` per run to ``partials.v1`` (keyed by run, so exactly one worker — the run's
owner — merges a run). The owner keeps the run's open windows (seconds of sample time) in memory
and closes them by event time: window ``s`` closes once every source of the run has shown a
sample newer than ``s + grace_s`` — a source that stopped sending (its engines finished, or its
worker is catching up) counts after ``idle_s`` of silence no longer, and a run with no active
source closes all its windows. Per-source watermarks keep a backlog from making good samples late
when one partition is drained ahead of another.

What survives a crash is :class:`RunCursor`, committed atomically with the rows it covers
(:mod:`streams.ledger`): the last closed second and the partials offset the rows reflect. A
window is therefore committed exactly once: on replay, contributions of partials below the
cursor's offset to closed windows are skipped, and contributions of later partials to closed
windows are *late* — emitted as :class:`~streams.wire.LateMetrics` under the id of their partial
and counted, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal, TypeVar

import msgspec

from streams.aggregate import Cell, CellKey, metrics_of
from streams.wire import MAX_HISTOGRAM_BUCKET, LateMetrics, SecondMetrics
from streams.wire.errors import DecodeError
from streams.wire.messages import check_histograms

NonNegative = Annotated[int, msgspec.Meta(ge=0)]

#: The key of a run's total rows: over all plans and labels.
TOTAL: tuple[None, None] = (None, None)
RowKey = tuple[str | None, str | None]  # plan, label


class Partial(msgspec.Struct, frozen=True, kw_only=True, tag="partial", tag_field="kind"):
    """Cells of one run aggregated from one results partition since its previous flush."""

    v: Literal[1] = 1
    run_id: str
    source: str
    """``<topic>/<partition>`` of the results the cells come from."""
    upto_offset: int
    """The last results offset the flush covers."""
    samples: NonNegative
    cells: list[SecondMetrics]


# MessagePack: partials are internal, and it decodes a third faster than JSON (and is smaller).
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Partial)


def encode(message: Partial) -> bytes:
    return _encoder.encode(message)


def decode(data: bytes) -> Partial:
    try:
        message: Partial = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise DecodeError("partial", str(exc)) from exc
    for cell in message.cells:
        check_histograms(cell, MAX_HISTOGRAM_BUCKET)
    return message


def partials_of(
    cells: dict[CellKey, SecondMetrics], source: str, upto_offset: int
) -> list[Partial]:
    """One :class:`Partial` per run of the drained ``cells``."""
    by_run: dict[str, list[SecondMetrics]] = {}
    samples: dict[str, int] = {}
    for key, cell in cells.items():
        by_run.setdefault(key[0], []).append(cell)
        samples[key[0]] = samples.get(key[0], 0) + cell.count
    return [
        Partial(run_id=run, source=source, upto_offset=upto_offset, samples=samples[run], cells=c)
        for run, c in by_run.items()
    ]


class RunCursor(msgspec.Struct, kw_only=True):
    """What the owner of a run persists after the rows up to ``closed_s`` are delivered."""

    closed_s: int = -1
    """Every window up to this second is closed and its rows delivered."""
    offset: int = -1
    """Partials of this run below this offset are reflected in the rows up to ``closed_s``."""
    late_samples: NonNegative = 0


@dataclass
class Closed:
    """What applying a message produced: final rows of closed windows, and late rows."""

    rows: list[SecondMetrics] = field(default_factory=list)
    late: LateMetrics | None = None
    late_samples: int = 0


@dataclass
class _Window:
    opened: float
    """When its first sample arrived (monotonic seconds)."""
    cells: dict[RowKey, Cell] = field(default_factory=dict)


@dataclass
class _Source:
    max_s: int
    heard: float
    """When its last partial was applied (monotonic seconds)."""


class RunWindows:
    """The open windows of one run at its owner."""

    def __init__(
        self, run_id: str, grace_s: int, idle_s: float, cursor: RunCursor | None = None
    ) -> None:
        self.run_id = run_id
        self.grace_s = grace_s
        self.idle_s = idle_s
        self.cursor = cursor or RunCursor()
        self._replay_below = self.cursor.offset
        self._open: dict[int, _Window] = {}
        self._sources: dict[str, _Source] = {}
        self.offset = self.cursor.offset
        """One past the last partials offset applied."""

    @property
    def open_seconds(self) -> list[int]:
        return sorted(self._open)

    @property
    def closed_s(self) -> int:
        return self.cursor.closed_s

    def apply(self, partial: Partial, offset: int, source: str, now: float) -> Closed:
        """Apply the partial at ``offset`` of partials partition ``source``, at time ``now``."""
        self.offset = max(self.offset, offset + 1)
        out = Closed()
        late: dict[tuple[int, RowKey], Cell] = {}
        replayed = offset < self._replay_below
        newest = -1
        for m in partial.cells:
            second = m.second_s
            newest = max(newest, second)
            if second <= self.cursor.closed_s:
                if not replayed:
                    _fold(late, (second, (m.plan_id, m.label)), m)
                    _fold(late, (second, TOTAL), m)
                    out.late_samples += m.count
                continue
            window = self._open.get(second)
            if window is None:
                window = self._open[second] = _Window(opened=now)
            _fold(window.cells, (m.plan_id, m.label), m)
            _fold(window.cells, TOTAL, m)
        mark = self._sources.get(partial.source)
        if mark is None:
            mark = self._sources[partial.source] = _Source(max_s=newest, heard=now)
        mark.max_s, mark.heard = max(mark.max_s, newest), now
        if late:
            self.cursor.late_samples += out.late_samples
            out.late = LateMetrics(
                run_id=self.run_id,
                source=f"{source}@{offset}",
                rows=self._rows([(s, k, c) for (s, k), c in sorted(late.items(), key=_order)]),
            )
        out.rows = self.tick(now)
        return out

    def tick(self, now: float) -> list[SecondMetrics]:
        """Close, in order, the windows that every active source has passed by the grace period
        and that have been open for the grace period (so every source's flush can reach them)."""
        if not self._open:
            return []
        active = [m.max_s for m in self._sources.values() if now - m.heard < self.idle_s]
        through = min(active) - self.grace_s if active else max(self._open)
        closed: list[tuple[int, RowKey, Cell]] = []
        for second in sorted(self._open):
            window = self._open[second]
            if second > through or (active and now - window.opened < self.grace_s):
                self.cursor.closed_s = max(self.cursor.closed_s, second - 1)
                return self._rows(closed)
            del self._open[second]
            closed.extend(
                (second, k, c)
                for k, c in sorted(window.cells.items(), key=lambda kv: _sort_key(kv[0]))
            )
        self.cursor.closed_s = max(self.cursor.closed_s, through)
        return self._rows(closed)

    def _rows(self, cells: list[tuple[int, RowKey, Cell]]) -> list[SecondMetrics]:
        if not cells:
            return []
        return metrics_of([((self.run_id, k[0], k[1], s), c) for s, k, c in cells])


_K = TypeVar("_K", tuple[int, RowKey], RowKey)


def _fold(cells: dict[_K, Cell], key: _K, m: SecondMetrics) -> None:
    cell = cells.get(key)
    if cell is None:
        cell = cells[key] = Cell()
    cell.add_metrics(m)


def _sort_key(k: RowKey) -> tuple[str, str]:
    return (k[0] or "", k[1] or "")


def _order(item: tuple[tuple[int, RowKey], Cell]) -> tuple[int, str, str]:
    (second, key), _ = item
    return (second, *_sort_key(key))
