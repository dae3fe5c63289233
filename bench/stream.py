"""Stream benchmark: one worker, results topic → ClickHouse rows, against a plain consumer.

    .venv/bin/python bench/stream.py --bootstrap 127.0.0.1:9092 [--samples 3000000]

All cases in one run, on the same backlog (``--samples`` samples in batches of ``--per-batch``,
``--runs`` runs × ``--engines`` engines × ``--labels`` labels, ``--partitions`` partitions):

1. ceiling: a plain aiokafka consumer in this process doing the same decode and aggregation
   (one :class:`~streams.aggregate.Aggregator` per partition, drained every second);
2. Quix Streams 3.28 (a peer framework; installed into its own cached virtualenv on first use):
   the same decode and aggregation in a ``StreamingDataFrame.update`` callback;
3. the worker (its own process), draining the backlog: time from its first sample to the flush
   that covers the last one, and to the last row visible in ClickHouse (the sink runs here, on the
   embedded engine; the last windows close after the grace period of silence);
4. the worker under live traffic at ``--live-rate`` samples/s for ``--live-seconds``: its CPU,
   and freshness — per row, the time from the end of its second to the row being in ClickHouse.

CPU is process time (user + system) over wall time: 1.0 is one core busy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.table import Table

from control.results.clickhouse import Store
from control.schedulers.processes import wait_for
from engine_sidecar.procstats import process_usage
from shibuya.dev import kafka_io
from shibuya.dev.maven import cache_root
from shibuya.dev.results import running_sink
from shibuya.dev.worker_proc import WorkerProcess
from streams.aggregate import Aggregator
from wire import BatchBuilder, Topic, decode_batch, encode_batch, result_key, topic_name


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


def batch(
    run: str,
    engine: str,
    seq: int,
    n: int,
    labels: int,
    t0_ms: int,
    rng: np.random.Generator,
    spread_ms: int = 1000,
) -> bytes:
    """One engine's batch: ``n`` samples taken from ``t0_ms`` over ``spread_ms``."""
    elapsed = rng.lognormal(4, 0.8, n).astype(np.int64)
    b = BatchBuilder()
    ok = rng.random(n) > 0.02
    b.add_many(
        ts_ms=t0_ms + np.sort(rng.integers(0, spread_ms, n)),
        elapsed_ms=elapsed,
        latency_ms=elapsed // 2,
        connect_ms=rng.integers(0, 4, n),
        bytes_recv=rng.integers(100, 5000, n),
        bytes_sent=np.full(n, 180),
        grp_threads=np.full(n, 50),
        all_threads=np.full(n, 100),
        labels=([f"GET /api/item/{i}" for i in range(labels)], np.arange(n) % labels),
        codes=(["500", "200"], ok.astype(np.int64)),
        success=ok,
        messages=([""], np.zeros(n, np.int64)),
    )
    return encode_batch(b.build(run_id=run, plan_id="plan", engine_id=engine, seq=seq))


async def fill(bootstrap: str, topic: str, args: argparse.Namespace) -> int:
    """The backlog: each engine sends one batch per second of sample time."""
    rng = np.random.default_rng(1)
    t0 = (int(time.time()) - 3600) * 1000
    per_engine = args.samples // (args.runs * args.engines * args.per_batch)
    sent = 0
    async with kafka_io.producer(bootstrap) as p:
        for seq in range(per_engine):
            for r in range(args.runs):
                for e in range(args.engines):
                    run, engine = f"bench-{r}", f"e{e}"
                    value = batch(
                        run, engine, seq, args.per_batch, args.labels, t0 + seq * 1000, rng
                    )
                    await p.send(topic, value, key=result_key(run, engine))
                    sent += args.per_batch
        await p.flush()
    return sent


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
        first = await consumer.getmany(timeout_ms=30_000)
        t0, c0 = time.perf_counter(), time.process_time()
        last_drain = t0
        records = first
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
                    agg.drain()
                last_drain = now
            if seen >= total:
                break
            records = await consumer.getmany(timeout_ms=1000, max_records=10_000)
        wall = time.perf_counter() - t0
        return Case(
            "plain aiokafka consumer (ceiling)", seen, wall, (time.process_time() - c0) / wall
        )
    finally:
        await consumer.stop()


QUIX_VERSION = "3.28.1"


def quix(bootstrap: str, topic: str, total: int, console: Console) -> Case | None:
    """Quix Streams in its own virtualenv (cached by version), running bench/quix_peer.py."""
    venv = cache_root() / f"bench-quixstreams-{QUIX_VERSION}"
    python = venv / "bin" / "python"
    if not python.exists():
        console.print(f"installing Quix Streams {QUIX_VERSION} into {venv} …")
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", f"quixstreams=={QUIX_VERSION}",
                 "numpy", "msgspec"],
                check=True,
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            console.print(f"[yellow]Quix Streams not available: {exc}[/yellow]")
            return None
    repo = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [str(python), str(repo / "bench" / "quix_peer.py"), bootstrap, topic, str(total)],
        env={**os.environ, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    samples, wall, cpu = out.stdout.split()[-3:]
    return Case("Quix Streams (peer)", int(samples), float(wall), float(cpu) / float(wall))


def cpu_of(pid: int) -> float:
    usage = process_usage(pid)
    return usage.cpu_seconds if usage else 0.0


def rss_mb(pid: int) -> float:
    usage = process_usage(pid)
    return usage.memory_bytes / 2**20 if usage else 0.0


def run_total(store: Store, run_prefix: str) -> int:
    rows = store.query_sync(
        "SELECT sum(count) FROM metrics_second FINAL WHERE startsWith(run_id, {p:String}) "
        "AND scope = 'run'",
        {"p": run_prefix},
    )
    return int(rows[0][0] or 0) if rows else 0


def worker_backlog(worker: WorkerProcess, store: Store, total: int) -> tuple[Case, Case]:
    samples = "shibuya_ingest_samples_total"
    flushes = "shibuya_aggregate_flushes_total"
    wait_for(lambda: worker.metrics().get(samples, 0) > 0, timeout_s=120, interval_s=0.02)
    t0, c0 = time.perf_counter(), cpu_of(worker.pid)
    peak = 0.0
    while worker.metrics().get(samples, 0) < total:
        peak = max(peak, rss_mb(worker.pid))
        time.sleep(0.02)
    done_flushes = worker.metrics().get(flushes, 0)
    # The flush after the last sample is what commits it.
    wait_for(lambda: worker.metrics().get(flushes, 0) > done_flushes, timeout_s=30, interval_s=0.02)
    t1, c1 = time.perf_counter(), cpu_of(worker.pid)
    wait_for(lambda: run_total(store, "bench-") >= total, timeout_s=120, interval_s=0.1)
    t2, c2 = time.perf_counter(), cpu_of(worker.pid)
    got = run_total(store, "bench-")
    aggregated = Case(
        "worker: backlog aggregated, partials committed",
        total,
        t1 - t0,
        (c1 - c0) / (t1 - t0),
        peak,
    )
    to_rows = Case(
        "worker: backlog → last row in ClickHouse",
        got,
        t2 - t0,
        (c2 - c0) / (t2 - t0),
        peak,
        "includes the idle close of the last windows",
    )
    return aggregated, to_rows


async def live(bootstrap: str, topic: str, rate: int, seconds: int, engines: int) -> int:
    rng = np.random.default_rng(2)
    tick = 0.1
    per_batch = max(1, int(rate * tick / engines))
    sent = 0
    async with kafka_io.producer(bootstrap) as p:
        start = time.monotonic()
        for i in range(int(seconds / tick)):
            now_ms = int(time.time() * 1000)
            for e in range(engines):
                # Samples taken over the last tick, as a sidecar publishes them.
                value = batch("live", f"e{e}", i, per_batch, 20, now_ms - 100, rng, spread_ms=100)
                await p.send(topic, value, key=result_key("live", f"e{e}"))
                sent += per_batch
            await asyncio.sleep(max(0.0, start + (i + 1) * tick - time.monotonic()))
        await p.flush()
    return sent


def freshness(store: Store) -> tuple[float, float, int]:
    rows = store.query_sync(
        "SELECT toUnixTimestamp(second), toUnixTimestamp64Milli(inserted_at) FROM metrics_second "
        "FINAL WHERE run_id = 'live' AND scope = 'run' AND source = ''"
    )
    lag = np.array([ins - (s + 1) * 1000 for s, ins in rows], dtype=np.float64) / 1000
    return float(np.percentile(lag, 50)), float(np.percentile(lag, 99)), len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--samples", type=int, default=3_000_000)
    ap.add_argument("--per-batch", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--engines", type=int, default=8)
    ap.add_argument("--labels", type=int, default=20)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--grace", type=int, default=1, help="the worker's window grace, seconds")
    ap.add_argument("--flush", type=float, default=0.5, help="the worker's flush interval, s")
    ap.add_argument("--live-rate", type=int, default=300_000)
    ap.add_argument("--live-seconds", type=int, default=10)
    args = ap.parse_args()
    console = Console(width=170)
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    topic = topic_name(Topic.RESULTS, prefix)
    asyncio.run(kafka_io.create_topics(args.bootstrap, [topic], partitions=args.partitions))
    total = asyncio.run(fill(args.bootstrap, topic, args))
    console.print(f"backlog: {total:,} samples on {topic} ({args.partitions} partitions)")
    cases = [asyncio.run(ceiling(args.bootstrap, topic, total))]
    peer = quix(args.bootstrap, topic, total, console)
    if peer is not None:
        cases.append(peer)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        store = Store.open(f"chdb:///{Path(tmp) / 'clickhouse'}")
        stack.callback(store.close)
        stack.enter_context(running_sink(store, args.bootstrap, topic_prefix=prefix))
        worker = WorkerProcess.start(
            bootstrap=args.bootstrap,
            app_id=prefix,
            topic_prefix=prefix,
            partitions=args.partitions,
            data_dir=Path(tmp) / "worker",
            log=Path(tmp) / "worker.log",
            settings={
                "WINDOW_GRACE_S": str(args.grace),
                "FLUSH_INTERVAL_S": str(args.flush),
                "LOG_LEVEL": "warning",
            },
        )
        stack.callback(worker.stop)
        cases.extend(worker_backlog(worker, store, total))
        c0, t0 = cpu_of(worker.pid), time.perf_counter()
        sent = asyncio.run(
            live(args.bootstrap, topic, args.live_rate, args.live_seconds, args.engines)
        )
        wall = time.perf_counter() - t0
        cpu = (cpu_of(worker.pid) - c0) / wall
        wait_for(lambda: run_total(store, "live") >= sent, timeout_s=60, interval_s=0.2)
        p50, p99, rows = freshness(store)
        cases.append(
            Case(
                f"worker: live {args.live_rate:,} samples/s",
                sent,
                wall,
                cpu,
                rss_mb(worker.pid),
                f"freshness p50 {p50:.2f} s, p99 {p99:.2f} s over {rows} rows",
            )
        )
    table = Table(
        title=f"stream benchmark ({os.cpu_count()} cores; broker on this machine; worker: "
        f"grace {args.grace} s, flush every {args.flush} s)"
    )
    for col in (
        "case",
        "samples",
        "seconds",
        "samples/s",
        "vs ceiling",
        "CPU (cores)",
        "RSS MB",
        "note",
    ):
        table.add_column(col, justify="left" if col in ("case", "note") else "right")
    base = cases[0].rate
    for c in cases:
        table.add_row(
            c.name,
            f"{c.samples:,}",
            f"{c.seconds:.2f}",
            f"{c.rate:,.0f}",
            f"{c.rate / base:.2f}",
            f"{c.cpu:.2f}" if c.cpu is not None else "",
            f"{c.rss_mb:.0f}" if c.rss_mb else "",
            c.note,
        )
    console.print(table)


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
