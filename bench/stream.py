"""Stream benchmark: one worker, results topic → ClickHouse rows, against a plain consumer.

    .venv/bin/python bench/stream.py --bootstrap 127.0.0.1:9092 [--samples 10000000]

All cases in one run, on the same backlog (``--samples`` samples in batches of ``--per-batch``,
``--runs`` runs × ``--engines`` engines × ``--labels`` labels, ``--partitions`` partitions):

1. ceiling: a plain aiokafka consumer in this process doing the same decode and aggregation
   (one :class:`~streams.aggregate.Aggregator` per partition, drained to columns every second,
   as the worker's flush drains it);
2. Quix Streams 3.28 (a peer framework; installed into its own cached virtualenv on first use):
   the same decode and aggregation in a ``StreamingDataFrame.update`` callback;
3. the worker (its own process), draining the backlog: time from its first sample to the
   committed partials that cover the last one (read here, not scraped from the worker), and to
   the last row visible in ClickHouse (the sink runs here, on the embedded engine; the last
   windows close after the grace period of silence); then ``--scale-out`` workers in one group on
   a backlog of their own (partitions spread, each run merged by one of them);
4. the worker under live traffic at ``--live-rate`` samples/s for ``--live-seconds``: its CPU,
   and freshness — per row, the time from the end of its second to the row being in ClickHouse
   (the run's last second apart, from the engines' stop: their last batches close it);
   then at a low rate over many labels (``--many-labels``), where cells outnumber samples.

CPU is process time (user + system) over wall time: 1.0 is one core busy. Samples per CPU-second
(rate / CPU) is what contention on a busy machine moves least.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from aiokafka import AIOKafkaConsumer
from quix_peer import quix
from rich.console import Console
from rich.table import Table
from stream_load import backlog_batches, live, send

from control.results.clickhouse import Store
from control.schedulers.processes import wait_for
from engine_sidecar.procstats import process_usage
from engine_sidecar.settings import BatchSettings
from shibuya.dev import kafka_io
from shibuya.dev.results import running_sink
from shibuya.dev.worker_proc import WorkerProcess
from streams.aggregate import Aggregator
from streams.merge import decode as decode_partial
from wire import Topic, decode_batch, topic_name


@dataclass
class Case:
    name: str
    samples: int
    seconds: float
    cpu: float | None = None
    rss_mb: float | None = None
    note: str = ""

    @property
    def rate(self) -> float:
        return self.samples / self.seconds if self.seconds else 0.0


async def ceiling(bootstrap: str, topic: str, total: int) -> Case:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    aggregators: dict[int, Aggregator] = {}
    seen = 0
    try:
        records = await consumer.getmany(timeout_ms=30_000)
        t0, c0 = time.perf_counter(), time.process_time()
        last_drain = t0
        while True:
            for tp, messages in records.items():
                agg = aggregators.setdefault(tp.partition, Aggregator())
                for m in messages:
                    b = decode_batch(m.value)
                    agg.add(b)
                    seen += len(b)
            now = time.perf_counter()
            if now - last_drain >= 1 or seen >= total:
                for agg in aggregators.values():
                    agg.drain_columns()
                last_drain = now
            if seen >= total:
                break
            records = await consumer.getmany(timeout_ms=1000, max_records=10_000)
        wall = time.perf_counter() - t0
        cpu = (time.process_time() - c0) / wall
        return Case("plain aiokafka consumer (ceiling)", seen, wall, cpu)
    finally:
        await consumer.stop()


def cpu_of(*pids: int) -> float:
    return sum(u.cpu_seconds for u in map(process_usage, pids) if u)


def rss_mb(*pids: int) -> float:
    return sum(u.memory_bytes for u in map(process_usage, pids) if u) / 2**20


def run_total(store: Store, run_prefix: str) -> int:
    rows = store.query_sync(
        "SELECT sum(count) FROM metrics_second FINAL WHERE startsWith(run_id, {p:String}) "
        "AND scope = 'run'",
        {"p": run_prefix},
    )
    return int(rows[0][0] or 0) if rows else 0


async def covered(
    bootstrap: str, prefix: str, last: dict[int, int], watch: Callable[[], None]
) -> float:
    """When committed partials cover each results partition to ``last``: read here, so workers
    (any number) pay nothing for being watched, as they did when their /metrics were polled."""
    results, partials = topic_name(Topic.RESULTS, prefix), topic_name(Topic.PARTIALS, prefix)
    consumer = AIOKafkaConsumer(
        partials,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        todo = {f"{results}/{p}": offset for p, offset in last.items()}
        while todo:
            for messages in (await consumer.getmany(timeout_ms=50)).values():
                for m in messages:
                    p = decode_partial(m.value).partial
                    if todo.get(p.source, p.upto_offset + 1) <= p.upto_offset:
                        del todo[p.source]
            watch()
        return time.perf_counter()
    finally:
        await consumer.stop()


Backlog = dict[int, int] | list[tuple[bytes, bytes]]
"""Where an existing backlog ends (each partition's last offset), or batches to send."""


def worker_backlog(
    workers: list[WorkerProcess],
    args: argparse.Namespace,
    prefix: str,
    store: Store,
    backlog: Backlog,
) -> tuple[Case, Case]:
    """From the first sample (batches are sent at once, to workers already in their group) to
    its partials committed and to its rows in ClickHouse."""
    name = "worker" if len(workers) == 1 else f"{len(workers)} workers"
    total, pids = args.total, [w.pid for w in workers]
    if isinstance(backlog, dict):  # polled until the first sample only: a scrape costs CPU
        wait_for(
            lambda: any(w.metrics().get("shibuya_ingest_samples_total", 0) for w in workers),
            timeout_s=120,
            interval_s=0.02,
        )
        last = backlog
    else:
        topic = topic_name(Topic.RESULTS, prefix)
        last = asyncio.run(send(args.bootstrap, topic, backlog, at_once=True))
    t0, c0 = time.perf_counter(), cpu_of(*pids)
    peak = 0.0

    def watch() -> None:
        nonlocal peak
        peak = max(peak, rss_mb(*pids))

    t1 = asyncio.run(covered(args.bootstrap, prefix, last, watch))
    c1 = cpu_of(*pids)
    wait_for(lambda: run_total(store, "bench-") >= total, timeout_s=120, interval_s=0.1)
    t2, c2 = time.perf_counter(), cpu_of(*pids)
    got = run_total(store, "bench-")
    return (
        Case(f"{name}: backlog aggregated, partials committed", total, t1 - t0,
             (c1 - c0) / (t1 - t0), peak),
        Case(f"{name}: backlog → last row in ClickHouse", got, t2 - t0, (c2 - c0) / (t2 - t0),
             peak, "includes the idle close of the last windows"),
    )  # fmt: skip


def live_case(
    args: argparse.Namespace,
    worker: WorkerProcess,
    store: Store,
    topic: str,
    run: str,
    rate: int,
    labels: int,
    seconds: int,
) -> Case:
    """Live traffic: the worker's CPU, and per row of the run's totals, the time from the end of
    its second to the row being in ClickHouse."""
    c0, t0 = cpu_of(worker.pid), time.perf_counter()
    sent = asyncio.run(live(args.bootstrap, topic, run, rate, labels, seconds, args.engines))
    wall, stopped_ms = time.perf_counter() - t0, time.time() * 1000  # the last batches are out
    cpu = (cpu_of(worker.pid) - c0) / wall
    wait_for(lambda: run_total(store, run) >= sent, timeout_s=60, interval_s=0.2)
    rows = store.query_sync(
        "SELECT toUnixTimestamp(second), toUnixTimestamp64Milli(inserted_at) FROM metrics_second "
        "FINAL WHERE run_id = {run:String} AND scope = 'run' AND source = '' ORDER BY second",
        {"run": run},
    )
    lag = np.array([ins - (s + 1) * 1000 for s, ins in rows], dtype=np.float64) / 1000
    # The last second (the engines stop within it) closes on their last batches, not live.
    p50, p99 = np.percentile(lag[:-1], 50), np.percentile(lag[:-1], 99)
    last = (rows[-1][1] - stopped_ms) / 1000
    note = (f"freshness p50 {p50:.2f} s, p99 {p99:.2f} s over {len(rows) - 1} rows; the last "
            f"second's row {last:.2f} s after the engines stopped")  # fmt: skip
    name = f"worker: live {rate:,} samples/s, {labels:,} labels"
    return Case(name, sent, wall, cpu, rss_mb(worker.pid), note)


def new_prefix(args: argparse.Namespace) -> str:
    """A fresh topic prefix, its results topic created."""
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    topic = topic_name(Topic.RESULTS, prefix)
    asyncio.run(kafka_io.create_topics(args.bootstrap, [topic], partitions=args.partitions))
    return prefix


def workers_cases(
    args: argparse.Namespace, prefix: str, count: int, backlog: Backlog
) -> list[Case]:
    """``count`` workers in a group on the backlog of ``prefix`` (batches: sent once they are in
    the group); then, with one worker, live traffic."""
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        store = Store.open(f"chdb:///{Path(tmp) / 'clickhouse'}")
        stack.callback(store.close)
        stack.enter_context(running_sink(store, args.bootstrap, topic_prefix=prefix))
        workers = []
        for i in range(count):
            workers.append(WorkerProcess.start(
                bootstrap=args.bootstrap, app_id=prefix, topic_prefix=prefix,
                partitions=args.partitions, data_dir=Path(tmp) / f"worker{i}",
                log=Path(tmp) / f"worker{i}.log",
                settings={"WINDOW_GRACE_S": str(args.grace), "FLUSH_INTERVAL_S": str(args.flush),
                          "LOG_LEVEL": "warning"},
            ))  # fmt: skip
            stack.callback(workers[-1].stop)
        if isinstance(backlog, list):  # all in the group, each with partitions, first
            wait_for(
                lambda: (
                    all(w.metrics().get("shibuya_owned_partitions", 0) for w in workers)
                    and sum(w.metrics().get("shibuya_owned_partitions", 0) for w in workers)
                    == args.partitions
                ),
                timeout_s=120,
                interval_s=0.5,
            )
        cases = list(worker_backlog(workers, args, prefix, store, backlog))
        if count > 1:
            return cases
        (worker,) = workers
        topic = topic_name(Topic.RESULTS, prefix)
        return [
            *cases,
            live_case(args, worker, store, topic, "live", args.live_rate, args.labels,
                      args.live_seconds),
            live_case(args, worker, store, topic, "many", args.many_labels_rate,
                      args.many_labels, args.live_seconds // 2),
        ]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--samples", type=int, default=10_000_000,
                    help="the backlog: long enough that start-up and the last flush do not weigh "
                    "(on 3 M, the ceiling's drain lasted 0.4 s)")  # fmt: skip
    ap.add_argument("--per-batch", type=int, default=BatchSettings().max_samples,
                    help="samples per result batch (default: the sidecar's; a backlog is sent "
                    "in full batches)")  # fmt: skip
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--engines", type=int, default=8)
    ap.add_argument("--labels", type=int, default=20)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--grace", type=int, default=1, help="the worker's window grace, seconds")
    ap.add_argument("--flush", type=float, default=0.5, help="the worker's flush interval, s")
    ap.add_argument("--live-rate", type=int, default=300_000)
    ap.add_argument("--live-seconds", type=int, default=60)
    ap.add_argument("--many-labels", type=int, default=2000, help="labels of the low-rate case")
    ap.add_argument("--many-labels-rate", type=int, default=20_000)
    ap.add_argument("--scale-out", type=int, default=2, help="N workers sharing a backlog, or 1")
    args = ap.parse_args()
    console = Console(width=190)
    batches = backlog_batches(args)
    args.total = total = len(batches) * args.per_batch
    prefix = new_prefix(args)
    topic = topic_name(Topic.RESULTS, prefix)
    last = asyncio.run(send(args.bootstrap, topic, batches))
    console.print(f"backlog: {total:,} samples on {topic} ({args.partitions} partitions)")
    cases = [asyncio.run(ceiling(args.bootstrap, topic, total))]
    peer = quix(args.bootstrap, topic, total, console.print)
    if peer is not None:
        cases.append(Case("Quix Streams (peer)", peer[0], peer[1], peer[2] / peer[1]))
    cases.extend(workers_cases(args, prefix, 1, last))
    if args.scale_out > 1:
        cases.extend(workers_cases(args, new_prefix(args), args.scale_out, batches))
    table = Table(
        title=f"stream benchmark ({os.cpu_count()} cores; broker on this machine; worker: "
        f"grace {args.grace} s, flush every {args.flush} s)"
    )
    for col in ("case", "samples", "seconds", "samples/s", "vs ceiling", "CPU (cores)",
                "samples per CPU-s", "vs ceiling", "RSS MB", "note"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("case", "note") else "right")
    base = cases[0]
    for c in cases:
        per_cpu = c.rate / c.cpu if c.cpu else 0.0
        table.add_row(
            c.name,
            f"{c.samples:,}",
            f"{c.seconds:.2f}",
            f"{c.rate:,.0f}",
            f"{c.rate / base.rate:.2f}",
            f"{c.cpu:.2f}" if c.cpu is not None else "",
            f"{per_cpu:,.0f}" if per_cpu else "",
            f"{per_cpu / (base.rate / (base.cpu or 1)):.2f}" if per_cpu else "",
            f"{c.rss_mb:.0f}" if c.rss_mb else "",
            c.note,
        )
    console.print(table)


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
