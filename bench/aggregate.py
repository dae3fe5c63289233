"""Aggregation benchmark: per-second cells from decoded result batches, ns per sample.

    .venv/bin/python bench/aggregate.py [--batches 200] [--per-batch 10000] [--labels 20]

Baseline: the same aggregation (count, failures, codes, bytes, elapsed min/max/sum, threads,
three histograms) written as a plain Python loop over samples, measured in the same run. The
aggregator is drained to columns every ``--drain-every`` batches, as a worker flushes its
partials; batches are the sidecar's default size.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from engine_sidecar.settings import BatchSettings
from streams import histogram
from streams.aggregate import Aggregator
from wire import BatchBuilder, ResultBatch


def make(batches: int, per_batch: int, labels: int) -> list[ResultBatch]:
    rng = np.random.default_rng(3)
    t0 = 1_764_288_000_000
    out = []
    for seq in range(batches):
        n = per_batch
        elapsed = rng.lognormal(4, 0.8, n).astype(np.int64)
        b = BatchBuilder()
        b.add_many(
            ts_ms=t0 + seq * 500 + rng.integers(0, 1000, n),
            elapsed_ms=elapsed,
            latency_ms=elapsed // 2,
            connect_ms=rng.integers(0, 4, n),
            bytes_recv=rng.integers(100, 5000, n),
            bytes_sent=np.full(n, 180),
            grp_threads=np.full(n, 50),
            all_threads=np.full(n, 100),
            labels=[f"label {i % labels}" for i in range(n)],
            codes=["500" if i % 50 == 0 else "200" for i in range(n)],
            success=[i % 50 != 0 for i in range(n)],
            messages=[""] * n,
        )
        out.append(b.build(run_id="run", plan_id="plan", engine_id=f"e{seq % 8}", seq=seq))
    return out


def python_loop(batches: list[ResultBatch]) -> int:
    cells: dict[Any, dict[str, Any]] = {}
    log_g = np.log(histogram.GAMMA)
    for b in batches:
        ts, el, lat, con = (
            b.ts_ms.tolist(),
            b.elapsed_ms.tolist(),
            b.latency_ms.tolist(),
            b.connect_ms.tolist(),
        )
        for i in range(len(b)):
            key = (b.run_id, b.plan_id, b.labels[b.label_idx[i]], ts[i] // 1000)
            c = cells.get(key)
            if c is None:
                c = cells[key] = {
                    "n": 0,
                    "f": 0,
                    "codes": Counter(),
                    "sum": 0,
                    "min": 1 << 62,
                    "max": 0,
                    "h": [defaultdict(int) for _ in range(3)],
                }
            c["n"] += 1
            c["f"] += 1 - int(b.success[i])
            c["codes"][b.codes[b.code_idx[i]]] += 1
            c["sum"] += el[i]
            c["min"] = min(c["min"], el[i])
            c["max"] = max(c["max"], el[i])
            for h, v in zip(c["h"], (el[i], lat[i], con[i]), strict=True):
                h[int(np.floor(np.log(v) / log_g)) + 1 if v > 0 else 0] += 1
    return len(cells)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--per-batch", type=int, default=BatchSettings().max_samples)
    ap.add_argument("--labels", type=int, default=20)
    ap.add_argument("--drain-every", type=int, default=4, help="batches between drains")
    args = ap.parse_args()
    batches = make(args.batches, args.per_batch, args.labels)
    n = args.batches * args.per_batch
    t = time.perf_counter()
    python_loop(batches[: max(1, len(batches) // 10)])
    base = (time.perf_counter() - t) / (n // 10 or 1) * 1e9
    agg = Aggregator()
    cells = 0
    t = time.perf_counter()
    for i, b in enumerate(batches):
        agg.add(b)
        if i % args.drain_every == args.drain_every - 1:  # a worker flushes once a second
            cells += sum(map(len, agg.drain_columns().values()))
    cells += sum(map(len, agg.drain_columns().values()))
    ours = (time.perf_counter() - t) / n * 1e9
    table = Table(
        title=f"{n:,} samples, {args.per_batch:,} per batch, {args.labels} labels, "
        f"{cells:,} cells drained"
    )
    for col in ("aggregation", "ns/sample", "vs baseline"):
        table.add_column(col, justify="left" if col == "aggregation" else "right")
    table.add_row("plain Python loop (baseline, 1/10 of the batches)", f"{base:,.0f}", "1.000")
    table.add_row("Aggregator (numpy, streams/aggregate.py)", f"{ours:,.0f}", f"{ours / base:.3f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
