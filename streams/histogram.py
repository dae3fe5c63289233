"""Mergeable latency histograms with ≤ 1 % relative error: the ``log2pct`` scheme, vectorised.

Bucket 0 holds values ≤ 0; bucket ``b ≥ 1`` holds ``v`` with ``floor(ln v / ln 1.02) + 1 == b``,
that is ``1.02**(b-1) ≤ v < 1.02**b``. The representative of a bucket is its geometric middle
``1.02**(b - 0.5)``, within ``sqrt(1.02) - 1 ≈ 0.995 %`` of every value in it. Histograms merge by
adding the counts of equal buckets, so percentiles over any set of engines, partitions, labels or
seconds come from one merged histogram — never from averaged percentiles.

Pure: numpy in, numpy out. docs/histograms.md has the measurements behind the choice.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from wire import MAX_HISTOGRAM_BUCKET

SCHEME: Final = "log2pct"
GAMMA: Final = 1.02
_LOG_GAMMA: Final = math.log(GAMMA)
#: Values up to this bucket index can be represented (~1.7e10 ms: over half a year).
MAX_BUCKET: Final = MAX_HISTOGRAM_BUCKET

IntArray = npt.NDArray[np.int64]
_POWERS: Final = np.power(GAMMA, np.arange(MAX_BUCKET + 1, dtype=np.float64))


def buckets(values: npt.ArrayLike) -> IntArray:
    """The bucket of each value (integers below 65,536 by table look-up, the rest by logarithm)."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iu" and arr.size:
        small = (arr >= 0) & (arr < _TABLE_SIZE)
        if small.all():
            looked_up: IntArray = _TABLE[arr]
            return looked_up
        out = np.where(small, _TABLE[np.where(small, arr, 0)], 0)
        out[~small] = _computed(arr[~small])
        return out
    return _computed(arr)


def _computed(values: npt.ArrayLike) -> IntArray:
    v = np.asarray(values, dtype=np.float64)
    out = np.zeros(v.shape, dtype=np.int64)
    positive = v > 0
    out[positive] = np.floor(np.log(v[positive]) / _LOG_GAMMA).astype(np.int64) + 1
    # floor(log(x)/log(g)) can land one off at exact powers of g; settle on the definition.
    b = np.clip(out[positive], 1, MAX_BUCKET)
    b -= v[positive] < _POWERS[b - 1]
    b += v[positive] >= _POWERS[np.minimum(b, MAX_BUCKET)]
    out[positive] = np.clip(b, 1, MAX_BUCKET)  # (0, 1) joins bucket 1; the huge, the last
    return out


_TABLE_SIZE: Final = 1 << 16
_TABLE: Final = _computed(np.arange(_TABLE_SIZE))


def representative(bucket: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The value that stands for each bucket."""
    b = np.asarray(bucket, dtype=np.float64)
    return np.where(b > 0, np.power(GAMMA, b - 0.5), 0.0)


def histogram(values: npt.ArrayLike) -> tuple[IntArray, IntArray]:
    """Sparse histogram of ``values``: (sorted bucket indexes, counts)."""
    counts = np.bincount(buckets(values))
    idx = np.flatnonzero(counts)
    return idx.astype(np.int64), counts[idx].astype(np.int64)


def merge(*hists: tuple[npt.ArrayLike, npt.ArrayLike]) -> tuple[IntArray, IntArray]:
    """The sum of sparse histograms."""
    if not hists:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    idx = np.concatenate([np.asarray(b, dtype=np.int64) for b, _ in hists])
    cnt = np.concatenate([np.asarray(c, dtype=np.int64) for _, c in hists])
    keys, inverse = np.unique(idx, return_inverse=True)
    return keys.astype(np.int64), np.bincount(inverse, weights=cnt).astype(np.int64)


def quantiles(
    hist: tuple[npt.ArrayLike, npt.ArrayLike], qs: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Quantiles (0..1) by nearest rank: the representative of the bucket holding rank ceil(q·n).

    Within 1 % of the exact nearest-rank quantile of the values that made the histogram.
    """
    idx = np.asarray(hist[0], dtype=np.int64)
    cnt = np.asarray(hist[1], dtype=np.int64)
    order = np.argsort(idx, kind="stable")
    idx, cnt = idx[order], cnt[order]
    total = int(cnt.sum())
    q = np.asarray(qs, dtype=np.float64)
    if total == 0:
        return np.full(q.shape, np.nan)
    ranks = np.maximum(1, np.ceil(q * total)).astype(np.int64)
    positions = np.searchsorted(np.cumsum(cnt), ranks, side="left")
    return representative(idx[np.minimum(positions, len(idx) - 1)])
