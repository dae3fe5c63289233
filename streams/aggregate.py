"""Per-second aggregation of raw result batches, in memory, vectorised: the pure core.

Cells are keyed by (run, plan, label, second of sample time). Each holds the count, failures,
samples per response code, bytes received and sent, elapsed min/max/sum, the most threads seen,
and ``log2pct`` histograms of elapsed, latency and connect time. :class:`Aggregator` folds a batch
in with numpy (one pass per column over the batch, then one addition per cell it touches; the
histogram entries are collected as keys and counted once, when draining) and drains to
:class:`~streams.columns.Columns` per run — cells as arrays, which add up exactly across
partitions and workers (:func:`streams.columns.group`).

Labels per run are capped (``max_labels``): past the cap, samples count under ``OVERFLOW_LABEL``,
so a run with runaway labels (ids in URLs) cannot exhaust a worker's memory; response codes
likewise (``max_codes``, ``OVERFLOW_CODE``: JMeter puts exception texts in that field). Failed
samples are also counted per failure message — cut to ``MAX_MESSAGE_CHARS``, at most
``max_messages`` per label and ``max_run_messages`` per run, the rest under
``OVERFLOW_MESSAGE`` — so a run's failures by message add up to its failures.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from streams import columns, histogram
from wire import ResultBatch, SecondMetrics

OVERFLOW_LABEL: Final = "(other labels)"
OVERFLOW_CODE: Final = "(other codes)"
OVERFLOW_MESSAGE: Final = columns.OVERFLOW_MESSAGE
NO_MESSAGE: Final = "(no message)"
MAX_MESSAGE_CHARS: Final = 200
N_BUCKETS: Final = columns.N_BUCKETS

CellKey = tuple[str, str, str, int]  # run, plan, label, second
MetricsKey = tuple[str, str | None, str | None, int]  # None: a total over plans or labels
_ONE: Final = np.int64(1)


class Aggregator:
    """Cells of the batches added since the last :meth:`drain`, held as columns.

    Every cell has a row in a set of arrays (counts, sums, extremes, and a rows × buckets block
    per histogram), so folding a batch in is a handful of vectorised operations whatever the
    number of cells it touches.
    """

    def __init__(
        self,
        max_labels: int = 1000,
        max_codes: int = 200,
        max_messages: int = columns.MAX_MESSAGES,
        max_run_messages: int = 200,
    ) -> None:
        self.max_labels = max_labels
        self.max_codes = max_codes
        self.max_messages = max_messages
        self.max_run_messages = max_run_messages
        self._labels: dict[tuple[str, str], set[str]] = {}  # (run, plan) → labels admitted
        self._messages: dict[tuple[str, str, str], set[str]] = {}  # (run, plan, label) → admitted
        self._run_messages: dict[str, set[str]] = {}
        self.samples = 0
        self._reset()

    def _reset(self, capacity: int = 64) -> None:
        self._rows: dict[CellKey, int] = {}
        self._cap = capacity
        self._ints = np.zeros((capacity, 5), np.int64)  # count, failures, recv, sent, elapsed sum
        self._min = np.full(capacity, columns.INT64_MAX, np.int64)
        self._max = np.zeros(capacity, np.int64)  # elapsed
        self._threads = np.zeros(capacity, np.int64)
        self._hist_keys: list[npt.NDArray[np.int64]] = []
        self._code_ids: dict[str, int] = {}
        self._code_counts = np.zeros((capacity, 8), np.int64)
        self._message_ids: dict[str, int] = {}
        self._message_counts = np.zeros((capacity, 4), np.int64)

    def _grow(self, rows: int, codes: int, messages: int) -> None:
        if rows > self._cap:
            cap = max(rows, 2 * self._cap)
            extra = cap - self._cap
            self._ints = np.concatenate([self._ints, np.zeros((extra, 5), np.int64)])
            self._min = np.concatenate([self._min, np.full(extra, columns.INT64_MAX, np.int64)])
            self._max = np.concatenate([self._max, np.zeros(extra, np.int64)])
            self._threads = np.concatenate([self._threads, np.zeros(extra, np.int64)])
            self._code_counts = _taller(self._code_counts, extra)
            self._message_counts = _taller(self._message_counts, extra)
            self._cap = cap
        self._code_counts = _wider(self._code_counts, codes)
        self._message_counts = _wider(self._message_counts, messages)

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
        failed = np.flatnonzero(batch.success == 0)
        message_ids = self._message_columns(batch, names, failed)
        self._grow(len(self._rows), len(self._code_ids), len(self._message_ids))
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
        # Two-dimensional counts through a flat view: numpy's fast path takes one index array
        # (a tuple of two cost 5 times as much).
        codes, messages = self._code_counts, self._message_counts
        np.add.at(_flat(codes), row * codes.shape[1] + code_ids[batch.code_idx], _ONE)
        np.add.at(_flat(messages), row[failed] * messages.shape[1] + message_ids, _ONE)
        # Histogram entries as keys (row, histogram, bucket), counted at drain: dense per-row
        # histograms cost 29 KB per cell, which a backlog (every batch a new second) pays per batch.
        # Kept as they come and joined once, at drain.
        base = row * columns.SLOTS
        self._hist_keys += (
            base + histogram.buckets(batch.elapsed_ms),
            base + (N_BUCKETS + histogram.buckets(batch.latency_ms)),
            base + (2 * N_BUCKETS + histogram.buckets(batch.connect_ms)),
        )

    def _code_id(self, code: str) -> int:
        """The column of a response code; past ``max_codes`` codes, the overflow code's."""
        found = self._code_ids.get(code)
        if found is not None:
            return found
        if len(self._code_ids) >= self.max_codes:
            code = OVERFLOW_CODE
        return self._code_ids.setdefault(code, len(self._code_ids))

    def _message_columns(
        self, batch: ResultBatch, names: list[str], failed: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.int64]:
        """The message column of each failed sample: its (label, message) pair's admitted
        message — cut to length, or past the caps of its label and run, the overflow's."""
        if not failed.size:
            return np.zeros(0, np.int64)
        width = max(1, len(batch.messages))
        pairs = batch.label_idx[failed].astype(np.int64) * width + batch.message_idx[failed]
        uniq, inverse = np.unique(pairs, return_inverse=True)
        run_seen = self._run_messages.setdefault(batch.run_id, set())
        cols = np.empty(uniq.size, np.int64)
        for i, pair in enumerate(uniq.tolist()):
            label_i, message_i = divmod(pair, width)
            text = batch.messages[message_i] if batch.messages else ""
            text = _cut(text) if text else NO_MESSAGE
            seen = self._messages.setdefault((batch.run_id, batch.plan_id, names[label_i]), set())
            if text not in seen:
                new_to_run = text not in run_seen
                full = len(seen) >= self.max_messages - 1 or (
                    new_to_run and len(run_seen) >= self.max_run_messages
                )
                if full and text != OVERFLOW_MESSAGE:
                    text = OVERFLOW_MESSAGE
                else:
                    seen.add(text)
                    run_seen.add(text)
            cols[i] = self._message_ids.setdefault(text, len(self._message_ids))
        out: npt.NDArray[np.int64] = cols[inverse.reshape(-1)]
        return out

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
        """The cells so far as metrics rows (see :meth:`drain_columns`)."""
        return {
            (run_id, row.plan_id or "", row.label or "", row.second_s): row
            for run_id, cells in self.drain_columns().items()
            for row in columns.rows(run_id, cells)
        }

    def drain_columns(self) -> dict[str, columns.Columns]:
        """The cells so far, per run; the aggregator starts empty (label admission is kept)."""
        used = len(self._rows)
        if not used:
            return {}
        entries = np.concatenate(self._hist_keys)  # row * SLOTS + slot, one per value
        cells, slots, counts = columns.count_entries(entries, None, used)
        keys = list(self._rows)  # in row order
        code_names = list(self._code_ids)
        every = columns.Columns(
            keys=[(plan, label, second) for _, plan, label, second in keys],
            sums=self._ints[:used].copy(),
            mins=self._min[:used].copy(),
            maxs=self._max[:used].copy(),
            threads=self._threads[:used].copy(),
            codes=columns.Named(code_names, self._code_counts[:used, : len(code_names)].copy()),
            messages=columns.Named(
                list(self._message_ids),
                self._message_counts[:used, : len(self._message_ids)].copy(),
            ),
            hist_cells=cells,
            hist_slots=slots,
            hist_counts=counts,
        )
        self._clear(used)
        runs = [run_id for run_id, _, _, _ in keys]
        if len(set(runs)) == 1:
            return {runs[0]: every}
        run_of = np.array(runs)
        return {r: every.take(np.flatnonzero(run_of == r)) for r in dict.fromkeys(runs)}

    def _clear(self, used: int) -> None:
        """Zero the rows in use, keeping the arrays: fresh zeros would page-fault on first use."""
        self._rows = {}
        self._ints[:used] = 0
        self._min[:used] = columns.INT64_MAX
        self._max[:used] = 0
        self._threads[:used] = 0
        self._hist_keys = []
        self._code_counts[:used] = 0
        self._message_counts[:used] = 0
        self._message_ids = {}  # a drain's names: the admitted ones are kept per label and run


def _flat(counts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """A one-dimensional view of ``counts`` (which is contiguous: never a copy)."""
    return np.reshape(counts, -1, copy=False)


def _taller(counts: npt.NDArray[np.int64], extra: int) -> npt.NDArray[np.int64]:
    return np.concatenate([counts, np.zeros((extra, counts.shape[1]), np.int64)])


def _wider(counts: npt.NDArray[np.int64], columns_needed: int) -> npt.NDArray[np.int64]:
    if columns_needed <= counts.shape[1]:
        return counts
    wider = max(columns_needed, 2 * counts.shape[1])
    pad = np.zeros((counts.shape[0], wider - counts.shape[1]), np.int64)
    return np.concatenate([counts, pad], axis=1)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"
