"""Histogram benchmark: cost per recorded value and percentile error, ours against two libraries.

    .venv/bin/python bench/histograms.py [--values 200000] [--batch 2000]

Values are lognormal response times in ms (integers), recorded in batches as a worker does. The
baseline is DDSketch (the ``ddsketch`` package, relative accuracy 1 %), measured in the same run;
HdrHistogram is the ``hdrhistogram`` package (2 significant digits). Error is the largest
relative error of p50/p90/p95/p99/p99.9 against the exact nearest-rank percentile.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from ddsketch import DDSketch
from hdrh.histogram import HdrHistogram
from rich.console import Console
from rich.table import Table

from streams import histogram as ours

QS = np.array([0.5, 0.9, 0.95, 0.99, 0.999])


def exact(values: np.ndarray) -> np.ndarray:
    s = np.sort(values)
    picked: np.ndarray = s[np.ceil(QS * s.size).astype(int) - 1].astype(float)
    return picked


def run_ours(batches: list[np.ndarray]) -> np.ndarray:
    merged = ours.merge(*(ours.histogram(b) for b in batches))
    return ours.quantiles(merged, QS)


def run_ddsketch(batches: list[np.ndarray]) -> np.ndarray:
    total = DDSketch(relative_accuracy=0.01)
    for b in batches:
        sketch = DDSketch(relative_accuracy=0.01)
        for v in b.tolist():
            sketch.add(v)
        total.merge(sketch)
    return np.array([total.get_quantile_value(q) for q in QS])


def run_hdr(batches: list[np.ndarray]) -> np.ndarray:
    total = HdrHistogram(1, 3_600_000, 2)
    for b in batches:
        hist = HdrHistogram(1, 3_600_000, 2)
        for v in b.tolist():
            hist.record_value(v)
        total.add(hist)
    return np.array([total.get_value_at_percentile(q * 100) for q in QS], dtype=float)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--values", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=2000)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    values = (rng.lognormal(4.5, 0.9, args.values)).astype(np.int64) + 1
    batches = [values[i : i + args.batch] for i in range(0, values.size, args.batch)]
    truth = exact(values)
    cases: dict[str, Callable[[list[np.ndarray]], np.ndarray]] = {
        "DDSketch (ddsketch, 1 %) — baseline": run_ddsketch,
        "HdrHistogram (hdrhistogram, 2 digits)": run_hdr,
        "log2pct, numpy (ours)": run_ours,
    }
    table = Table(
        title=f"{args.values:,} values in batches of {args.batch:,}, record + merge + quantiles"
    )
    for col in ("histogram", "ns/value", "vs baseline", "max error p50…p99.9"):
        table.add_column(col, justify="left" if col == "histogram" else "right")
    base = None
    for name, fn in cases.items():
        t = time.perf_counter()
        got = fn(batches)
        ns = (time.perf_counter() - t) / values.size * 1e9
        base = base or ns
        err = np.max(np.abs(got - truth) / truth)
        table.add_row(name, f"{ns:,.0f}", f"{ns / base:.3f}", f"{err * 100:.2f} %")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
