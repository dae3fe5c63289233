"""Provisional rows of open seconds (:mod:`wire.live`) from merged cells, percentiles included.

Pure: :class:`~streams.columns.Columns` in, :class:`~wire.LiveRow` out. The quantiles of every
cell come from its elapsed histogram at once (one cumulative sum over all cells' entries, one
search per quantile), by nearest rank as in :func:`streams.histogram.quantiles`, clamped to the
cell's exact extremes.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from streams import histogram
from streams.columns import N_BUCKETS, Columns
from wire import LiveRow

QUANTILES: Final = np.array([0.5, 0.9, 0.95, 0.99, 0.999])


def elapsed_quantiles(c: Columns) -> np.ndarray:
    """(n, 5): p50, p90, p95, p99 and p99.9 of each cell's elapsed time (0 for an empty cell)."""
    n = len(c)
    elapsed = c.hist_slots < N_BUCKETS  # slots 0..N_BUCKETS-1: the elapsed histogram
    cells, buckets = c.hist_cells[elapsed], c.hist_slots[elapsed]
    cum = np.concatenate([[0], np.cumsum(c.hist_counts[elapsed])])
    first = np.searchsorted(cells, np.arange(n), "left")
    total = cum[np.searchsorted(cells, np.arange(n), "right")] - cum[first]
    ranks = cum[first, None] + np.maximum(1, np.ceil(QUANTILES[None, :] * total[:, None]))
    at = np.minimum(np.searchsorted(cum, ranks, "left") - 1, max(len(buckets) - 1, 0))
    values = histogram.representative(buckets[at]) if len(buckets) else np.zeros((n, 5))
    clamped = np.clip(values, c.mins[:, None].astype(np.float64), c.maxs[:, None])
    return np.where(total[:, None] > 0, clamped, 0.0)


def live_rows(c: Columns) -> list[LiveRow]:
    """One :class:`~wire.LiveRow` per cell."""
    q = np.round(elapsed_quantiles(c), 3).tolist()
    sums, threads = c.sums.tolist(), c.threads.tolist()
    return [
        LiveRow(
            plan_id=plan,
            label=label,
            second_s=second,
            count=sums[i][0],
            failures=sums[i][1],
            bytes_recv=sums[i][2],
            bytes_sent=sums[i][3],
            elapsed_sum_ms=sums[i][4],
            threads_max=threads[i],
            elapsed=tuple(q[i]),
        )
        for i, (plan, label, second) in enumerate(c.keys)
    ]
