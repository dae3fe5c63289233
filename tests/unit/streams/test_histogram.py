"""The log2pct histogram: bucket bounds, merging, and percentiles within 1 % of exact."""

from __future__ import annotations

import numpy as np
import pytest

from streams import histogram as h


def test_bucket_bounds_follow_the_definition() -> None:
    values = np.array([0, 1, 2, 3, 50, 51, 120, 1000, 10**9])
    b = h.buckets(values)
    assert b[0] == 0
    for v, bucket in zip(values[1:], b[1:], strict=True):
        assert h.GAMMA ** (bucket - 1) <= v < h.GAMMA**bucket
    # exact powers of gamma sit at a bucket's lower bound
    powers = np.power(h.GAMMA, np.arange(0, 500))
    assert (h.buckets(powers) == np.arange(1, 501)).all()


def test_representatives_are_within_one_percent() -> None:
    values = np.arange(1, 200_000)
    rep = h.representative(h.buckets(values))
    assert np.max(np.abs(rep - values) / values) <= np.sqrt(h.GAMMA) - 1 + 1e-12 < 0.01


@pytest.mark.parametrize("seed", range(5))
def test_merged_percentiles_are_within_one_percent_of_exact(seed: int) -> None:
    rng = np.random.default_rng(seed)
    parts = [rng.lognormal(4 + i % 3, 0.7 + 0.1 * i, 5_000).astype(np.int64) + 1 for i in range(8)]
    merged = h.merge(*(h.histogram(p) for p in parts))
    everything = np.sort(np.concatenate(parts))
    qs = np.array([0.5, 0.9, 0.95, 0.99, 0.999, 1.0])
    exact = everything[np.maximum(np.ceil(qs * everything.size).astype(int), 1) - 1]
    got = h.quantiles(merged, qs)
    assert np.all(np.abs(got - exact) / exact < 0.01), (got, exact)
    assert int(merged[1].sum()) == everything.size


def test_merge_adds_counts_of_equal_buckets() -> None:
    a = (np.array([1, 5]), np.array([2, 3]))
    b = (np.array([5, 9]), np.array([4, 1]))
    idx, cnt = h.merge(a, b)
    assert idx.tolist() == [1, 5, 9]
    assert cnt.tolist() == [2, 7, 1]


def test_empty_histogram_has_no_quantiles() -> None:
    assert np.isnan(h.quantiles(h.merge(), [0.5])).all()
