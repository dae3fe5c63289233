"""Per-second aggregation of raw result batches, in memory, vectorised: the pure core.

Cells are keyed by (run, plan, label, second of sample time). Each holds the count, failures,
samples per response code, bytes received and sent, elapsed min/max/sum, the most threads seen,
and ``log2pct`` histograms of elapsed, latency and connect time. :class:`Aggregator` folds a batch
in with numpy (one pass per column over the batch, then one addition per cell it touches; the
histogram entries are collected as keys and counted once, at :meth:`Aggregator.drain`), and drains
to :class:`~streams.wire.SecondMetrics` rows with sparse histograms. :class:`Cell` merges such
rows by addition (dense histograms), so partials from any number of partitions and workers
combine exactly.

Labels per run are capped (``max_labels``): past the cap, samples count under ``OVERFLOW_LABEL``,
so a run with runaway labels (ids in URLs) cannot exhaust a worker's memory; response codes
likewise (``max_codes``, ``OVERFLOW_CODE``: JMeter puts exception texts in that field).
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain
from typing import Final

import numpy as np
import numpy.typing as npt

from streams import histogram
from streams.wire import Histogram, ResultBatch, SecondMetrics

OVERFLOW_LABEL: Final = "(other labels)"
OVERFLOW_CODE: Final = "(other codes)"
N_BUCKETS: Final = histogram.MAX_BUCKET + 1

CellKey = tuple[str, str, str, int]  # run, plan, label, second
MetricsKey = tuple[str, str | None, str | None, int]  # None: a total over plans or labels
_ONE: Final = np.int64(1)
_ROW_SPAN: Final = 3 * N_BUCKETS  # histogram keys per row: elapsed, latency, connect
_DENSE_COUNT_LIMIT: Final = 1 << 22
_INT64_MAX: Final = np.iinfo(np.int64).max


@dataclass
class Cell:
    """Rows of one cell added up: the merge of partials from many partitions or flushes.

    Histograms are kept as the sparse parts added and summed once, by :func:`metrics_of` for
    all the cells closing together: a cell is closed once and added to many times.
    """

    count: int = 0
    failures: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    bytes_recv: int = 0
    bytes_sent: int = 0
    elapsed_min_ms: int = 2**63 - 1
    elapsed_max_ms: int = 0
    elapsed_sum_ms: int = 0
    threads_max: int = 0
    parts: tuple[list[Histogram], list[Histogram], list[Histogram]] = field(
        default_factory=lambda: ([], [], [])
    )
    """The elapsed, latency and connect histograms added."""

    def add_metrics(self, m: SecondMetrics) -> None:
        """Fold in a row of final or partial metrics (sparse histograms)."""
        if not m.count:
            return
        self.count += m.count
        self.failures += m.failures
        self.codes.update(m.codes)
        self.bytes_recv += m.bytes_recv
        self.bytes_sent += m.bytes_sent
        self.elapsed_min_ms = min(self.elapsed_min_ms, m.elapsed_min_ms)
        self.elapsed_max_ms = max(self.elapsed_max_ms, m.elapsed_max_ms)
        self.elapsed_sum_ms += m.elapsed_sum_ms
        self.threads_max = max(self.threads_max, m.threads_max)
        self.parts[0].append(m.elapsed)
        self.parts[1].append(m.latency)
        self.parts[2].append(m.connect)


def metrics_of(cells: list[tuple[MetricsKey, Cell]]) -> list[SecondMetrics]:
    """The rows of closed cells, their histograms summed in one pass over all of them."""
    parts = [part for _, cell in cells for hist in cell.parts for part in hist]
    lengths = [len(part.buckets) for part in parts]
    # Each part's (cell, histogram) slot: parts are in cell order, then elapsed/latency/connect.
    slots = [
        3 * i + h for i, (_, cell) in enumerate(cells) for h in range(3) for _ in cell.parts[h]
    ]
    buckets = np.fromiter(chain.from_iterable(p.buckets for p in parts), np.int64, sum(lengths))
    counts = np.fromiter(chain.from_iterable(p.counts for p in parts), np.float64, sum(lengths))
    keys = buckets + np.repeat(np.asarray(slots, np.int64) * N_BUCKETS, lengths)
    dense = np.bincount(keys, weights=counts, minlength=3 * len(cells) * N_BUCKETS)
    (flat,) = np.nonzero(dense)
    slot_of, bucket_of = np.divmod(flat, N_BUCKETS)
    bounds = np.searchsorted(slot_of, np.arange(3 * len(cells) + 1)).tolist()
    bucket_l, count_l = bucket_of.tolist(), dense[flat].astype(np.int64).tolist()
    out = []
    for i, (key, cell) in enumerate(cells):
        hists = [
            Histogram(
                scheme=histogram.SCHEME,
                buckets=bucket_l[bounds[3 * i + h] : bounds[3 * i + h + 1]],
                counts=count_l[bounds[3 * i + h] : bounds[3 * i + h + 1]],
            )
            for h in range(3)
        ]
        run_id, plan_id, label, second = key
        out.append(
            SecondMetrics(
                run_id=run_id,
                plan_id=plan_id,
                label=label,
                second_s=second,
                count=cell.count,
                failures=cell.failures,
                codes=dict(cell.codes),
                bytes_recv=cell.bytes_recv,
                bytes_sent=cell.bytes_sent,
                elapsed_min_ms=cell.elapsed_min_ms if cell.count else 0,
                elapsed_max_ms=cell.elapsed_max_ms,
                elapsed_sum_ms=cell.elapsed_sum_ms,
                threads_max=cell.threads_max,
                elapsed=hists[0],
                latency=hists[1],
                connect=hists[2],
            )
        )
    return out


class Aggregator:
    """Cells of the batches added since the last :meth:`drain`, held as columns.

    Every cell has a row in a set of arrays (counts, sums, extremes, and a rows × buckets block
    per histogram), so folding a batch in is a handful of vectorised operations whatever the
    number of cells it touches; :class:`Cell` objects are made only when draining.
    """

    def __init__(self, max_labels: int = 1000, max_codes: int = 200) -> None:
        self.max_labels = max_labels
        self.max_codes = max_codes
        self._labels: dict[tuple[str, str], set[str]] = {}  # (run, plan) → labels admitted
        self.samples = 0
        self._reset()

    def _reset(self, capacity: int = 64) -> None:
        self._rows: dict[CellKey, int] = {}
        self._cap = capacity
        self._ints = np.zeros((capacity, 5), np.int64)  # count, failures, recv, sent, elapsed sum
        self._min = np.full(capacity, _INT64_MAX, np.int64)
        self._max = np.zeros(capacity, np.int64)  # elapsed
        self._threads = np.zeros(capacity, np.int64)
        self._hist_keys: list[npt.NDArray[np.int64]] = []
        self._code_ids: dict[str, int] = {}
        self._code_counts = np.zeros((capacity, 8), np.int64)

    def _grow(self, rows: int, codes: int) -> None:
        if rows > self._cap:
            cap = max(rows, 2 * self._cap)
            extra = cap - self._cap
            self._ints = np.concatenate([self._ints, np.zeros((extra, 5), np.int64)])
            self._min = np.concatenate([self._min, np.full(extra, _INT64_MAX, np.int64)])
            self._max = np.concatenate([self._max, np.zeros(extra, np.int64)])
            self._threads = np.concatenate([self._threads, np.zeros(extra, np.int64)])
            self._code_counts = np.concatenate(
                [self._code_counts, np.zeros((extra, self._code_counts.shape[1]), np.int64)]
            )
            self._cap = cap
        if codes > self._code_counts.shape[1]:
            wider = max(codes, 2 * self._code_counts.shape[1])
            pad = np.zeros((self._cap, wider - self._code_counts.shape[1]), np.int64)
            self._code_counts = np.concatenate([self._code_counts, pad], axis=1)

    def add(self, batch: ResultBatch) -> None:
        n = len(batch)
        if n == 0:
            return
        self.samples += n
        names = self._admitted_names(batch)
        # Seconds relative to the batch's first sample (ts_base_ms is its earliest timestamp).
        first = batch.ts_base_ms // 1000
        seconds = (batch.ts_off_ms + (batch.ts_base_ms - first * 1000)) // 1000
        span = int(seconds.max()) + 1
        keys = batch.label_idx.astype(np.int64) * span + seconds
        # Distinct (label, second) pairs and each sample's pair, by counting (the range is small).
        present = np.bincount(keys, minlength=len(batch.labels) * span) > 0
        uniq = np.flatnonzero(present)
        local = np.cumsum(present) - 1
        row_of_key = np.empty(uniq.size, np.int64)
        for c, k in enumerate(uniq.tolist()):
            label_i, second_off = divmod(k, span)
            key = (batch.run_id, batch.plan_id, names[label_i], first + second_off)
            row = self._rows.get(key)
            if row is None:
                row = self._rows[key] = len(self._rows)
            row_of_key[c] = row
        code_ids = np.fromiter(map(self._code_id, batch.codes), np.int64, len(batch.codes))
        self._grow(len(self._rows), len(self._code_ids))
        row = row_of_key[local[keys]]  # each sample's row
        elapsed = batch.elapsed_ms.astype(np.int64)
        # Unbuffered adds (numpy's fast ufunc.at path: native int64 on both sides).
        np.add.at(self._ints[:, 0], row, _ONE)
        np.add.at(self._ints[:, 1], row, 1 - batch.success.astype(np.int64))
        np.add.at(self._ints[:, 2], row, batch.bytes_recv)
        np.add.at(self._ints[:, 3], row, batch.bytes_sent)
        np.add.at(self._ints[:, 4], row, elapsed)
        np.minimum.at(self._min, row, elapsed)
        np.maximum.at(self._max, row, elapsed)
        np.maximum.at(self._threads, row, batch.all_threads.astype(np.int64))
        np.add.at(self._code_counts, (row, code_ids[batch.code_idx]), _ONE)
        # Histogram entries as keys (row, histogram, bucket), counted at drain: dense per-row
        # histograms cost 29 KB per cell, which a backlog (every batch a new second) pays per batch.
        base = row * _ROW_SPAN
        self._hist_keys.append(
            np.concatenate(
                [
                    base + histogram.buckets(batch.elapsed_ms),
                    base + (N_BUCKETS + histogram.buckets(batch.latency_ms)),
                    base + (2 * N_BUCKETS + histogram.buckets(batch.connect_ms)),
                ]
            )
        )

    def _code_id(self, code: str) -> int:
        """The column of a response code; past ``max_codes`` codes, the overflow code's."""
        found = self._code_ids.get(code)
        if found is not None:
            return found
        if len(self._code_ids) >= self.max_codes:
            code = OVERFLOW_CODE
        return self._code_ids.setdefault(code, len(self._code_ids))

    def _admitted_names(self, batch: ResultBatch) -> list[str]:
        """The name each of the batch's labels counts under: itself, or past the cap, overflow."""
        admitted = self._labels.setdefault((batch.run_id, batch.plan_id), set())
        names: list[str] = []
        for label in batch.labels:
            if label in admitted or len(admitted) < self.max_labels:
                admitted.add(label)
                names.append(label)
            else:
                names.append(OVERFLOW_LABEL)
        return names

    def drain(self) -> dict[CellKey, SecondMetrics]:
        """The cells so far, as metrics rows; the aggregator starts empty (label admission is
        kept)."""
        used = len(self._rows)
        if not used:
            return {}
        keys = np.concatenate(self._hist_keys)
        if used * _ROW_SPAN <= _DENSE_COUNT_LIMIT:  # few cells (live traffic): count densely
            dense = np.bincount(keys, minlength=used * _ROW_SPAN)
            keys = np.flatnonzero(dense)
            counts = dense[keys]
        else:  # many cells (a backlog, every batch a new second): sort
            keys, counts = np.unique(keys, return_counts=True)
        rows = keys // _ROW_SPAN
        bounds = np.searchsorted(rows, np.arange(used + 1)).tolist()
        which, bucket = np.divmod(keys - rows * _ROW_SPAN, N_BUCKETS)
        hist_of, bucket_l, count_l = which.tolist(), bucket.tolist(), counts.tolist()
        ints = self._ints[:used].tolist()
        mins, maxs = self._min[:used].tolist(), self._max[:used].tolist()
        threads = self._threads[:used].tolist()
        code_names = list(self._code_ids)
        code_rows, code_cols = np.nonzero(self._code_counts[:used])
        code_vals = self._code_counts[code_rows, code_cols].tolist()
        codes: list[dict[str, int]] = [{} for _ in range(used)]
        for r, c, v in zip(code_rows.tolist(), code_cols.tolist(), code_vals, strict=True):
            codes[r][code_names[c]] = v
        out: dict[CellKey, SecondMetrics] = {}
        for key, row in self._rows.items():
            count, failures, recv, sent, total = ints[row]
            lo, hi = bounds[row], bounds[row + 1]
            # keys are sorted: within a row, elapsed entries come first, then latency, connect.
            split = [lo, *(lo + bisect.bisect_left(hist_of[lo:hi], h) for h in (1, 2)), hi]
            hists = [
                Histogram(
                    scheme=histogram.SCHEME,
                    buckets=bucket_l[split[h] : split[h + 1]],
                    counts=count_l[split[h] : split[h + 1]],
                )
                for h in range(3)
            ]
            run_id, plan_id, label, second = key
            out[key] = SecondMetrics(
                run_id=run_id,
                plan_id=plan_id,
                label=label,
                second_s=second,
                count=count,
                failures=failures,
                codes=codes[row],
                bytes_recv=recv,
                bytes_sent=sent,
                elapsed_min_ms=mins[row],
                elapsed_max_ms=maxs[row],
                elapsed_sum_ms=total,
                threads_max=threads[row],
                elapsed=hists[0],
                latency=hists[1],
                connect=hists[2],
            )
        self._clear(used)
        return out

    def _clear(self, used: int) -> None:
        """Zero the rows in use, keeping the arrays: fresh zeros would page-fault on first use."""
        self._rows = {}
        self._ints[:used] = 0
        self._min[:used] = _INT64_MAX
        self._max[:used] = 0
        self._threads[:used] = 0
        self._hist_keys = []
        self._code_counts[:used] = 0
