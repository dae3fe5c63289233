"""Prometheus scrape benchmark: the CPU a worker spends on one scrape of its runs' series.

    .venv/bin/python bench/prom.py [--runs 4] [--labels 100] [--scrapes 50]

A worker exports, per run and label, a histogram of elapsed time (13 bounds) and three counters.
The baseline, measured in the same run, is prometheus_client's own way: labelled ``Histogram``
and ``Counter`` objects fed the same rows, rendered by ``generate_latest``. Ours
(:class:`streams.prom.RunSeries`) renders a series' lines again only when rows changed it: a
scrape after every series changed (a busy run between two scrapes), after a tenth did, and
after none did.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from rich.console import Console
from rich.table import Table

from streams import histogram
from streams.prom import LE_SECONDS, RunSeries
from wire import Histogram as Buckets
from wire import SecondMetrics


def rows(runs: int, labels: int, rng: np.random.Generator) -> list[SecondMetrics]:
    out = []
    for r in range(runs):
        for lb in range(labels):
            values = rng.lognormal(4, 1, 50).astype(np.int64)
            b, c = np.unique(histogram.buckets(values), return_counts=True)
            h = Buckets(scheme=histogram.SCHEME, buckets=b.tolist(), counts=c.tolist())
            out.append(SecondMetrics(
                run_id=f"run-{r}", plan_id="plan-1", label=f"GET /api/items/{lb}", second_s=1,
                count=50, failures=1, codes={}, bytes_recv=5000, bytes_sent=0,
                elapsed_min_ms=int(values.min()), elapsed_max_ms=int(values.max()),
                elapsed_sum_ms=int(values.sum()), threads_max=1, elapsed=h, latency=h, connect=h,
            ))  # fmt: skip
    return out


def library(rows: list[SecondMetrics]) -> Callable[[], bytes]:
    registry = CollectorRegistry()
    names = ["collection", "plan", "run", "label"]
    elapsed = Histogram(
        "shibuya_response_time_seconds", "elapsed", names, buckets=LE_SECONDS, registry=registry
    )
    counters = [
        Counter(n, n, names, registry=registry) for n in ("samples", "failures", "received_bytes")
    ]
    for row in rows:
        values = ("", row.plan_id or "", row.run_id, row.label or "")
        for bucket, count in zip(row.elapsed.buckets, row.elapsed.counts, strict=True):
            for _ in range(count):
                elapsed.labels(*values).observe(float(histogram.representative(bucket)) / 1000)
        for counter, v in zip(counters, (row.count, row.failures, row.bytes_recv), strict=True):
            counter.labels(*values).inc(v)
    return lambda: generate_latest(registry)


def per_scrape(scrape: Callable[[], bytes], between: Callable[[], None], n: int) -> float:
    """CPU seconds per scrape, ``between`` run before each and not counted."""
    spent = 0.0
    for _ in range(n):
        between()
        c0 = time.process_time()
        scrape()
        spent += time.process_time() - c0
    return spent / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--labels", type=int, default=100)
    ap.add_argument("--scrapes", type=int, default=50)
    args = ap.parse_args()
    data = rows(args.runs, args.labels, np.random.default_rng(1))
    ours = RunSeries(max_labels=args.labels)
    ours.observe(data)
    tenth = data[: max(1, len(data) // 10)]
    base = library(data)
    cases = [
        ("prometheus_client (baseline)", base, lambda: None),
        ("ours, every series changed", ours.exposition, lambda: ours.observe(data)),
        ("ours, a tenth changed", ours.exposition, lambda: ours.observe(tenth)),
        ("ours, none changed", ours.exposition, lambda: None),
    ]
    lines = sum(1 for line in base().decode().splitlines() if not line.startswith("#"))
    table = Table(
        title=f"one scrape: {args.runs} runs × {args.labels} labels, {lines:,} samples, "
        f"{len(base()) / 1024:.0f} KB (baseline) / {len(ours.exposition()) / 1024:.0f} KB (ours)"
    )
    for col in ("case", "CPU ms per scrape", "scrapes per CPU-s", "vs baseline"):
        table.add_column(col, justify="left" if col == "case" else "right")
    base_s = per_scrape(base, lambda: None, args.scrapes)
    for name, scrape, between in cases:
        s = base_s if scrape is base else per_scrape(scrape, between, args.scrapes)
        table.add_row(name, f"{s * 1000:.2f}", f"{1 / s:,.0f}", f"{base_s / s:.1f}×")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
