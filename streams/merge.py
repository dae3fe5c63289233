"""Merge per run: partials from every partition → final per-second rows, each emitted once.

The pure core of the merge agent (``streams/agents/merge.py``), tested without Kafka.

The aggregate agent of each results partition (a *source*) sends, once per flush, one
:class:`Partial` per run to ``partials.v1`` (keyed by run, so exactly one worker — the run's
owner — merges a run). The owner keeps the run's open windows (seconds of sample time) in memory
and closes them by event time: window ``s`` closes once every source of the run has shown a
sample newer than ``s + grace_s`` — a source whose engines have all sent their last batch (the
sidecar's when it stops: :attr:`Partial.done`) counts no longer at once, a source that stopped
sending otherwise (an engine lost, or its worker catching up) after ``idle_s`` of silence, and a
run with no active source closes all its windows. Per-source watermarks keep a backlog from
making good samples late when one partition is drained ahead of another.

What survives a crash is :class:`RunCursor`, committed atomically with the rows it covers
(:mod:`streams.ledger`): the last closed second and the partials offset the rows reflect. A
window is therefore committed exactly once: on replay, contributions of partials below the
cursor's offset to closed windows are skipped, and contributions of later partials to closed
windows are *late* — emitted as :class:`~wire.LateMetrics` under the id of their partial
and counted, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

import msgspec
import numpy as np
import numpy.typing as npt

from streams.columns import SLOTS, Columns, Ints, Key, Named, cut, group, rows
from streams.live import live_rows
from wire import LateMetrics, LiveSeconds, SecondMetrics
from wire.errors import DecodeError
from wire.messages import NonNegative

RowKey = tuple[str | None, str | None]  # plan, label


class Partial(msgspec.Struct, frozen=True, kw_only=True, tag="partial", tag_field="kind"):
    """Cells of one run aggregated from one results partition since its previous flush, as
    columns (:class:`~streams.columns.Columns`): arrays travel as little-endian bytes."""

    v: Literal[2] = 2
    run_id: str
    source: str
    """``<topic>/<partition>`` of the results the cells come from."""
    upto_offset: int
    """The last results offset the flush covers."""
    plans: list[str]
    labels: list[str]
    code_names: list[str]
    plan_idx: bytes
    label_idx: bytes
    seconds: bytes
    sums: bytes
    mins: bytes
    maxs: bytes
    threads: bytes
    codes: bytes
    hist_cells: bytes
    hist_slots: bytes
    hist_counts: bytes
    message_names: list[str] = []
    messages: bytes = b""
    """(n, len(message_names)): failed samples per failure message."""
    done: bool = False
    """Every engine of the run on this source has sent its last batch: the source has nothing
    more to send, and the run's windows need not wait for its silence (on the last partial of
    the flush; with no cells, when the last batches brought none)."""


_I64 = np.dtype("<i8")
_COLUMNS = (
    "plan_idx", "label_idx", "seconds", "mins", "maxs", "threads",
    "hist_cells", "hist_slots", "hist_counts",
)  # fmt: skip
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Partial)


def encode(message: Partial) -> bytes:
    return _encoder.encode(message)


def to_partial(
    run_id: str, cells: Columns, source: str, upto_offset: int, *, done: bool = False
) -> Partial:
    plans: dict[str, int] = {}
    labels: dict[str, int] = {}
    plan_idx = [plans.setdefault(plan or "", len(plans)) for plan, _, _ in cells.keys]
    label_idx = [labels.setdefault(label or "", len(labels)) for _, label, _ in cells.keys]

    def raw(values: npt.ArrayLike) -> bytes:
        return np.ascontiguousarray(values, dtype=_I64).tobytes()

    return Partial(
        run_id=run_id,
        source=source,
        upto_offset=upto_offset,
        plans=list(plans),
        labels=list(labels),
        code_names=cells.codes.names,
        message_names=cells.messages.names,
        plan_idx=raw(plan_idx),
        label_idx=raw(label_idx),
        seconds=raw([second for _, _, second in cells.keys]),
        sums=raw(cells.sums),
        mins=raw(cells.mins),
        maxs=raw(cells.maxs),
        threads=raw(cells.threads),
        codes=raw(cells.codes.counts),
        messages=raw(cells.messages.counts),
        hist_cells=raw(cells.hist_cells),
        hist_slots=raw(cells.hist_slots),
        hist_counts=raw(cells.hist_counts),
        done=done,
    )


#: Histogram entries per partial at most (~250 KB of columns before compression): a message
#: must stay under the broker's limit (``message.max.bytes``, 1 MB by default) however many
#: cells a flush drains — a backlog can drain hundreds of thousands.
MAX_ENTRIES: Final = 10_000


def partials_of(
    drained: dict[str, Columns], source: str, upto_offset: int, done: set[str] | None = None
) -> list[Partial]:
    """The :class:`Partial` messages of the drained cells: per run, in chunks of whole cells
    with at most :data:`MAX_ENTRIES` histogram entries each (a cell has at most 3,603). The last
    of each run in ``done`` says so; a run in ``done`` without cells gets one without cells."""
    done = done or set()
    out = []
    for run_id, cells in drained.items():
        per_cell = np.bincount(cells.hist_cells, minlength=len(cells))
        start, total = 0, 0
        if per_cell.sum() > MAX_ENTRIES:
            for i, entries in enumerate(per_cell.tolist()):
                if total + entries > MAX_ENTRIES and i > start:
                    out.append(to_partial(run_id, cut(cells, start, i), source, upto_offset))
                    start, total = i, 0
                total += entries
        rest = cells if start == 0 else cut(cells, start, len(cells))
        out.append(to_partial(run_id, rest, source, upto_offset, done=run_id in done))
    for run_id in sorted(done - drained.keys()):
        out.append(to_partial(run_id, Columns.none(), source, upto_offset, done=True))
    return out


@dataclass
class Received:
    """A decoded partial: its cells, keyed by (plan, label) index and second."""

    partial: Partial
    seconds: Ints
    pairs: Ints
    """Each cell's index into :attr:`pair_keys`."""
    pair_keys: list[RowKey]
    cells: Columns


def decode(data: bytes) -> Received:
    """Decode and check a partial; raise :class:`DecodeError` naming what is wrong."""
    try:
        p = _decoder.decode(data)
        n = len(p.seconds) // 8
        arrays = {
            name: np.frombuffer(getattr(p, name), dtype=_I64).astype(np.int64) for name in _COLUMNS
        }
        sums = np.frombuffer(p.sums, dtype=_I64).astype(np.int64).reshape(n, 5)
        codes = np.frombuffer(p.codes, dtype=_I64).astype(np.int64).reshape(n, len(p.code_names))
        messages = (
            np.frombuffer(p.messages, dtype=_I64).astype(np.int64).reshape(n, len(p.message_names))
        )
    except (msgspec.DecodeError, ValueError) as exc:
        raise DecodeError("partial", str(exc)) from exc
    _check(p, n, arrays, sums, codes)
    if (messages < 0).any() or (messages.sum(axis=1) > sums[:, 1]).any():
        raise DecodeError("partial", "failure messages count more than the failures")
    pair_keys: list[RowKey] = [(plan, label) for plan in p.plans for label in p.labels]
    pairs = arrays["plan_idx"] * len(p.labels) + arrays["label_idx"]
    keys: list[Key] = [
        (pair_keys[i][0], pair_keys[i][1], s)
        for i, s in zip(pairs.tolist(), arrays["seconds"].tolist(), strict=True)
    ]
    cells = Columns(
        keys=keys,
        sums=sums,
        mins=arrays["mins"],
        maxs=arrays["maxs"],
        threads=arrays["threads"],
        codes=Named(p.code_names, codes),
        messages=Named(p.message_names, messages),
        hist_cells=arrays["hist_cells"],
        hist_slots=arrays["hist_slots"],
        hist_counts=arrays["hist_counts"],
    )
    return Received(p, arrays["seconds"], pairs, pair_keys, cells)


def _check(p: Partial, n: int, a: dict[str, Ints], sums: Ints, codes: Ints) -> None:
    def fail(reason: str) -> None:
        raise DecodeError("partial", reason)

    if any(len(a[k]) != n for k in ("plan_idx", "label_idx", "mins", "maxs", "threads")):
        fail("column lengths differ")
    if not (len(a["hist_cells"]) == len(a["hist_slots"]) == len(a["hist_counts"])):
        fail("histogram columns differ in length")
    if n and (a["plan_idx"].min() < 0 or a["plan_idx"].max() >= len(p.plans)):
        fail("plan index out of range")
    if n and (a["label_idx"].min() < 0 or a["label_idx"].max() >= len(p.labels)):
        fail("label index out of range")
    if len(a["hist_cells"]) and (a["hist_cells"].min() < 0 or a["hist_cells"].max() >= n):
        fail("histogram cell out of range")
    if len(a["hist_slots"]) and (a["hist_slots"].min() < 0 or a["hist_slots"].max() >= SLOTS):
        fail(f"histogram slot outside 0..{SLOTS - 1}")
    if (sums < 0).any() or (codes < 0).any() or (a["hist_counts"] < 0).any():
        fail("negative count")


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
    parts: list[tuple[Columns, Ints]] = field(default_factory=list)
    """Cells received for this second, each with its cells' run-level (plan, label) ids."""


@dataclass
class _Source:
    max_s: int
    heard: float
    """When its last partial was applied (monotonic seconds)."""
    done: bool = False
    """Its engines have sent their last batches: no longer awaited (:attr:`Partial.done`)."""


class RunWindows:
    """The open windows of one run at its owner."""

    def __init__(
        self,
        run_id: str,
        grace_s: int,
        idle_s: float,
        cursor: RunCursor | None = None,
        *,
        live: bool = True,
    ) -> None:
        self.run_id = run_id
        self.grace_s = grace_s
        self.idle_s = idle_s
        self.cursor = cursor or RunCursor()
        self._replay_below = self.cursor.offset
        self._open: dict[int, _Window] = {}
        self._sources: dict[str, _Source] = {}
        self._pairs: list[RowKey] = []
        self._pair_ids: dict[RowKey, int] = {}
        self.offset = self.cursor.offset
        """One past the last partials offset applied."""
        self._live = live
        self._touched: set[int] = set()
        """Open seconds that gained cells since the last :meth:`provisional` (if ``live``)."""

    @property
    def open_seconds(self) -> list[int]:
        return sorted(self._open)

    @property
    def closed_s(self) -> int:
        return self.cursor.closed_s

    def apply(self, received: Received, offset: int, source: str, now: float) -> Closed:
        """Apply the partial at ``offset`` of partials partition ``source``, at time ``now``."""
        self.offset = max(self.offset, offset + 1)
        out = Closed()
        cells, seconds = received.cells, received.seconds
        if not len(cells):
            mark = self._sources.get(received.partial.source)
            if mark is not None and received.partial.done:  # its engines' last batches, empty
                mark.done, mark.heard = True, now
                out.rows = self.tick(now)
            return out
        ids = np.array([self._pair_id(k) for k in received.pair_keys], np.int64)[received.pairs]
        late: list[tuple[int, list[tuple[Columns, Ints]]]] = []
        for second in np.unique(seconds).tolist():
            idx = np.flatnonzero(seconds == second)
            part = (cells.take(idx) if len(idx) < len(cells) else cells, ids[idx])
            if second <= self.cursor.closed_s:
                if offset >= self._replay_below:  # below: already in committed rows
                    late.append((second, [part]))
                continue
            window = self._open.get(second)
            if window is None:
                window = self._open[second] = _Window(opened=now)
            window.parts.append(part)
            if self._live:
                self._touched.add(second)
        if late:
            out.late_samples = sum(parts[0][0].samples for _, parts in late)
            self.cursor.late_samples += out.late_samples
            out.late = LateMetrics(
                run_id=self.run_id, source=f"{source}@{offset}", rows=self._close(late)
            )
        newest = int(seconds.max())
        mark = self._sources.get(received.partial.source)
        if mark is None:
            mark = self._sources[received.partial.source] = _Source(max_s=newest, heard=now)
        mark.max_s, mark.heard = max(mark.max_s, newest), now
        mark.done = received.partial.done
        out.rows = self.tick(now)
        return out

    def _pair_id(self, key: RowKey) -> int:
        found = self._pair_ids.get(key)
        if found is None:
            found = self._pair_ids[key] = len(self._pairs)
            self._pairs.append(key)
        return found

    def tick(self, now: float) -> list[SecondMetrics]:
        """Close, in order, the windows that every active source has passed by the grace period
        and that have been open for the grace period (so every source's flush can reach them)."""
        if not self._open:
            return []
        active = [
            m.max_s for m in self._sources.values() if not m.done and now - m.heard < self.idle_s
        ]
        through = min(active) - self.grace_s if active else max(self._open)
        closing: list[tuple[int, list[tuple[Columns, Ints]]]] = []
        for second in sorted(self._open):
            window = self._open[second]
            if second > through or (active and now - window.opened < self.grace_s):
                # Closed: what every source has passed by the grace, short of this window; a
                # second before the first window is not closed until then (another engine's
                # first second may still come).
                self.cursor.closed_s = max(self.cursor.closed_s, min(second - 1, through))
                return self._close(closing)
            del self._open[second]
            closing.append((second, window.parts))
        self.cursor.closed_s = max(self.cursor.closed_s, through)
        return self._close(closing)

    def provisional(self, since_s: int) -> LiveSeconds | None:
        """The rows of the open seconds from ``since_s`` on that gained cells since the previous
        call (``None`` if none did): what each holds so far, for live views (:mod:`wire.live`).
        Older seconds get none: a backlog being drained is nobody's live view."""
        seconds = sorted(s for s in self._touched if s >= since_s and s in self._open)
        self._touched.clear()
        if not seconds:
            return None
        merged = self._merged([(s, self._open[s].parts) for s in seconds])
        return LiveSeconds(run_id=self.run_id, closed_s=self.cursor.closed_s,
                           rows=[r for c in merged for r in live_rows(c)])  # fmt: skip

    def _close(self, windows: list[tuple[int, list[tuple[Columns, Ints]]]]) -> list[SecondMetrics]:
        """Rows of whole windows: per (plan, label) and the run total, sorted by key."""
        return [r for c in self._merged(windows) for r in rows(self.run_id, c)]

    def _merged(self, windows: list[tuple[int, list[tuple[Columns, Ints]]]]) -> list[Columns]:
        """Each window's parts added up per (plan, label), sorted by key, and the run total."""
        out: list[Columns] = []
        for second, parts in windows:
            used = np.unique(np.concatenate([ids for _, ids in parts]))
            order = sorted(used.tolist(), key=lambda i: _sort_key(self._pairs[i]))
            slot = np.empty(len(self._pairs), np.int64)
            slot[order] = np.arange(len(order))
            keys: list[Key] = [(*self._pairs[i], second) for i in order]
            total: Key = (None, None, second)
            out.append(group([p for p, _ in parts], keys, [slot[ids] for _, ids in parts], total))
        return out


def _sort_key(k: RowKey) -> tuple[str, str]:
    return (k[0] or "", k[1] or "")
