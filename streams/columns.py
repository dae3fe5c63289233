"""Cells as columns: what the aggregate agent drains and the merge agent adds up.

A :class:`Columns` holds ``n`` cells of one run — each a (plan, label, second) — as numpy arrays:
counts and sums, extremes, samples per response code and failed samples per failure message (a
row keeps its :data:`MAX_MESSAGES` most frequent), and the ``log2pct`` histogram entries as
sparse (cell, slot, count) triples, where slot ``h * N_BUCKETS + bucket`` names the histogram
(0 elapsed, 1 latency, 2 connect). Adding cells up is then a few vectorised operations whatever
their number (:func:`group`), and Python objects are made only for the final rows (:func:`rows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from streams import histogram
from wire import Histogram, SecondMetrics

N_BUCKETS: Final = histogram.MAX_BUCKET + 1
SLOTS: Final = 3 * N_BUCKETS
INT64_MAX: Final = np.iinfo(np.int64).max
_DENSE_LIMIT: Final = 1 << 22
_DENSE_PER_ENTRY: Final = 4

Ints = npt.NDArray[np.int64]
Key = tuple[str | None, str | None, int]
"""(plan, label, second); ``None`` plan and label: the run total."""


#: Failure messages of a cell beyond the most frequent ``MAX_MESSAGES`` count under this name.
OVERFLOW_MESSAGE: Final = "(other messages)"
MAX_MESSAGES: Final = 20


@dataclass
class Named:
    """Samples per name in each cell — response codes, failure messages: (n, len(names))."""

    names: list[str]
    counts: Ints

    def take(self, cells: npt.NDArray[np.intp]) -> Named:
        return Named(self.names, self.counts[cells])

    def maps(self) -> list[dict[str, int]]:
        """Per cell, name → samples (names with none left out)."""
        out: list[dict[str, int]] = [{} for _ in range(len(self.counts))]
        cells, cols = np.nonzero(self.counts)
        values = self.counts[cells, cols].tolist()
        for i, j, v in zip(cells.tolist(), cols.tolist(), values, strict=True):
            out[i][self.names[j]] = v
        return out


def _grouped(parts: Sequence[Named], ids: Sequence[Ints], n: int) -> Named:
    names = sorted({c for p in parts for c in p.names})
    column = {c: i for i, c in enumerate(names)}
    counts = np.zeros((n, len(names)), np.int64)
    for part, at in zip(parts, ids, strict=True):
        cols = np.array([column[c] for c in part.names], np.int64)
        np.add.at(counts, (at[:, None], cols[None, :]), part.counts)
    return Named(names, counts)


def capped(messages: dict[str, int], limit: int = MAX_MESSAGES) -> dict[str, int]:
    """The ``limit - 1`` most frequent messages and the rest under :data:`OVERFLOW_MESSAGE`
    (the counts add up to the same)."""
    if len(messages) <= limit:
        return messages
    ranked = sorted(messages.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(ranked[: limit - 1])
    rest = sum(n for _, n in ranked[limit - 1 :])
    kept[OVERFLOW_MESSAGE] = kept.get(OVERFLOW_MESSAGE, 0) + rest
    return kept


@dataclass
class Columns:
    keys: list[Key]
    sums: Ints
    """(n, 5): count, failures, bytes received, bytes sent, elapsed sum."""
    mins: Ints
    maxs: Ints
    threads: Ints
    codes: Named
    """Samples per response code."""
    messages: Named
    """Failed samples per failure message: they add up to the failures."""
    hist_cells: Ints
    hist_slots: Ints
    hist_counts: Ints
    """Sorted by cell, then slot."""

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def none(cls) -> Columns:
        """No cells."""
        empty, table = np.zeros(0, np.int64), np.zeros((0, 0), np.int64)
        return cls([], np.zeros((0, 5), np.int64), empty, empty, empty, Named([], table),
                   Named([], table), empty, empty, empty)  # fmt: skip

    @property
    def samples(self) -> int:
        return int(self.sums[:, 0].sum())

    def take(self, cells: npt.NDArray[np.intp]) -> Columns:
        """The given cells (sorted indexes), renumbered from 0."""
        renumber = np.full(len(self.keys), -1, np.int64)
        renumber[cells] = np.arange(len(cells))
        mask = renumber[self.hist_cells] >= 0
        return Columns(
            keys=[self.keys[i] for i in cells.tolist()],
            sums=self.sums[cells],
            mins=self.mins[cells],
            maxs=self.maxs[cells],
            threads=self.threads[cells],
            codes=self.codes.take(cells),
            messages=self.messages.take(cells),
            hist_cells=renumber[self.hist_cells[mask]],
            hist_slots=self.hist_slots[mask],
            hist_counts=self.hist_counts[mask],
        )


def cut(c: Columns, start: int, stop: int) -> Columns:
    """Cells ``start:stop``, renumbered from 0: slices (histogram entries are sorted by cell),
    where :meth:`Columns.take` masks every entry."""
    lo, hi = np.searchsorted(c.hist_cells, [start, stop]).tolist()
    return Columns(
        keys=c.keys[start:stop],
        sums=c.sums[start:stop],
        mins=c.mins[start:stop],
        maxs=c.maxs[start:stop],
        threads=c.threads[start:stop],
        codes=Named(c.codes.names, c.codes.counts[start:stop]),
        messages=Named(c.messages.names, c.messages.counts[start:stop]),
        hist_cells=c.hist_cells[lo:hi] - start,
        hist_slots=c.hist_slots[lo:hi],
        hist_counts=c.hist_counts[lo:hi],
    )


def count_entries(
    keys: Ints, weights: npt.NDArray[np.float64] | None, n: int
) -> tuple[Ints, Ints, Ints]:
    """Add up histogram entries ``cell * SLOTS + slot`` (each weighing 1, or its weight) into
    sparse (cell, slot, count) triples sorted by cell and slot.

    Counted densely (a count for every slot of every cell, then the non-zero ones) where entries
    fill the block; sorted where they are sparse — few samples over many cells (many labels at a
    low rate), where scanning the block cost 40 times the sort (measured: ~4 ns per slot of the
    block against ~15 ns per entry sorted)."""
    if n * SLOTS <= min(_DENSE_LIMIT, _DENSE_PER_ENTRY * len(keys)):
        dense = np.bincount(keys, weights=weights, minlength=n * SLOTS)
        flat = np.flatnonzero(dense)
        counts = dense[flat].astype(np.int64)
    elif weights is None:
        flat, counts = np.unique(keys, return_counts=True)
    else:
        flat, inverse = np.unique(keys, return_inverse=True)
        counts = np.bincount(inverse, weights=weights).astype(np.int64)
    return flat // SLOTS, flat % SLOTS, counts


def group(
    parts: Sequence[Columns], keys: list[Key], ids: Sequence[Ints], total: Key | None
) -> Columns:
    """Cells of ``parts`` added up by key: ``ids[i][j]`` is the index in ``keys`` of cell ``j`` of
    ``parts[i]``. With ``total``, one more cell — the sum of all — comes last under that key."""
    n = len(keys) + (total is not None)
    codes = _grouped([p.codes for p in parts], ids, n)
    messages = _grouped([p.messages for p in parts], ids, n)
    sums = np.zeros((n, 5), np.int64)
    mins = np.full(n, INT64_MAX, np.int64)
    maxs = np.zeros(n, np.int64)
    threads = np.zeros(n, np.int64)
    cells, slots, counts = [], [], []
    for part, at in zip(parts, ids, strict=True):
        np.add.at(sums, at, part.sums)
        np.minimum.at(mins, at, part.mins)
        np.maximum.at(maxs, at, part.maxs)
        np.maximum.at(threads, at, part.threads)
        cells.append(at[part.hist_cells])
        slots.append(part.hist_slots)
        counts.append(part.hist_counts)
    all_cells = np.concatenate(cells) if cells else np.zeros(0, np.int64)
    all_slots = np.concatenate(slots) if slots else np.zeros(0, np.int64)
    all_counts = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    out_keys = list(keys)
    if total is not None:
        last = n - 1
        sums[last] = sums[:last].sum(axis=0)
        mins[last] = mins[:last].min(initial=INT64_MAX)
        maxs[last] = maxs[:last].max(initial=0)
        threads[last] = threads[:last].max(initial=0)
        for named in (codes, messages):
            named.counts[last] = named.counts[:last].sum(axis=0)
        all_cells = np.concatenate([all_cells, np.full(len(all_slots), last, np.int64)])
        all_slots = np.concatenate([all_slots, all_slots])
        all_counts = np.concatenate([all_counts, all_counts])
        out_keys.append(total)
    # Float weights hold counts exactly up to 2**53.
    hc, hs, hn = count_entries(all_cells * SLOTS + all_slots, all_counts.astype(np.float64), n)
    return Columns(out_keys, sums, mins, maxs, threads, codes, messages, hc, hs, hn)


def rows(run_id: str, c: Columns) -> list[SecondMetrics]:
    """One :class:`SecondMetrics` per cell."""
    n = len(c)
    bounds = np.searchsorted(c.hist_cells * 3 + c.hist_slots // N_BUCKETS, np.arange(3 * n + 1))
    b = bounds.tolist()
    buckets = (c.hist_slots % N_BUCKETS).tolist()
    counts = c.hist_counts.tolist()
    sums, mins, maxs, threads = (
        c.sums.tolist(),
        c.mins.tolist(),
        c.maxs.tolist(),
        c.threads.tolist(),
    )
    code_maps, message_maps = c.codes.maps(), c.messages.maps()
    out = []
    for i, (plan, label, second) in enumerate(c.keys):
        count, failures, recv, sent, total = sums[i]
        h = [
            Histogram(
                scheme=histogram.SCHEME,
                buckets=buckets[b[3 * i + k] : b[3 * i + k + 1]],
                counts=counts[b[3 * i + k] : b[3 * i + k + 1]],
            )
            for k in range(3)
        ]
        out.append(SecondMetrics(
            run_id=run_id, plan_id=plan, label=label, second_s=second, count=count,
            failures=failures, codes=code_maps[i], bytes_recv=recv, bytes_sent=sent,
            elapsed_min_ms=mins[i] if count else 0, elapsed_max_ms=maxs[i], elapsed_sum_ms=total,
            threads_max=threads[i], elapsed=h[0], latency=h[1], connect=h[2],
            failure_messages=capped(message_maps[i]),
        ))  # fmt: skip
    return out
