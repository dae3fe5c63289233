"""Sidecar benchmark: parse + publish throughput, and CPU share while results stream in.

    .venv/bin/python bench/sidecar.py --bootstrap 127.0.0.1:9092 [--samples 500000] [--rate 10000]

1. Throughput on a large JTL file (JMeter's 17 default columns, quoted labels), in samples per
   CPU-second of this process, against a plain ``csv.reader`` pass over the same file measured in
   the same run: parse only (into columnar batches, encoded), then parse + publish to Kafka
   (acknowledged, zstd: the default) one batch a send and in groups (one checkpoint write and
   one wait for the broker per group), with the wall rate — from the first read to the last
   acknowledgement, the topic made and the producer connected before (a running sidecar's
   state, not a start-up's); each for ``--batch`` sizes.
2. CPU share of a ``shibuya sidecar tail`` process while a writer appends ``--rate`` samples/s
   to its file for ``--seconds`` (the writer stands in for JMeter, which needs a target far faster
   than this machine's Python ones to reach 10 k samples/s), read from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from prometheus_client import CollectorRegistry
from rich.console import Console
from rich.table import Table

from control.schedulers.processes import wait_for
from engine_sidecar.jtl import JtlParser
from engine_sidecar.jtl_format import JMETER_DEFAULT_COLUMNS, detect_format
from engine_sidecar.kafka import producer
from engine_sidecar.procstats import process_usage
from engine_sidecar.publisher import Identity, Limits, PublisherMetrics, ResultPublisher
from engine_sidecar.reader import CHUNK_BYTES
from engine_sidecar.settings import BatchSettings
from shibuya.dev import kafka_io
from wire import BatchBuilder, KafkaAccess, encode_batch

DEFAULT_BATCH = BatchSettings().max_samples
PREVIOUS_BATCH = 2000
QUOTED = [f'"GET /api/item/{i}, ""v2"""' for i in range(20)]  # JMeter quotes these
PLAIN = [f"GET /api/item/{i}" for i in range(20)]


def jtl_lines(n: int, t0: int, labels: list[str] = QUOTED) -> list[str]:
    lines = []
    for i in range(n):
        ok = i % 50 != 0
        lines.append(
            f"{t0 + i // 10},{20 + i % 300},{labels[i % 20]},{200 if ok else 500},"
            f"{'OK' if ok else 'Internal Server Error'},users 1-{i % 50},text,"
            f"{'true' if ok else 'false'},,{1000 + i % 700},180,50,100,"
            f"http://127.0.0.1:8000/api/item/{i % 20},{10 + i % 200},0,{i % 5}\n"
        )
    return lines


def write_jtl(path: Path, n: int, labels: list[str] = QUOTED) -> None:
    with path.open("w") as f:
        f.write(",".join(JMETER_DEFAULT_COLUMNS) + "\n")
        f.writelines(jtl_lines(n, 1_764_288_000_000, labels))


def cpu_of(fn: object) -> float:
    assert callable(fn)
    t = time.process_time()
    fn()
    return time.process_time() - t


def plain_csv(path: Path) -> None:
    with path.open(newline="") as f:
        for _ in csv.reader(f):
            pass


def parse_only(path: Path, batch: int) -> None:
    """As the reader does: chunks of the file parsed up to a batch's room, each full batch
    encoded, the rest held back by the parser for the next."""
    data = path.read_bytes()
    parser = JtlParser(detect_format(data[: data.index(b"\n") + 1]))
    builder, seq = BatchBuilder(), 0
    for i in range(0, len(data), CHUNK_BYTES):
        parser.feed(data[i : i + CHUNK_BYTES], builder, limit=batch - len(builder))
        while len(builder) >= batch:
            encode_batch(builder.build(run_id="r", plan_id="p", engine_id="e", seq=seq))
            seq += 1
            parser.feed(b"", builder, limit=batch)
    encode_batch(builder.build(run_id="r", plan_id="p", engine_id="e", seq=seq))


async def parse_publish(
    path: Path, bootstrap: str, work: Path, max_group: int, batch: int
) -> tuple[int, float, float]:
    """Publish the file as a sidecar does: (samples published, CPU seconds, wall seconds) from
    the first read to the last acknowledgement — the topic made and the producer connected
    before, as a running sidecar has them."""
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    await kafka_io.create_topics(bootstrap, [topic], partitions=4)
    stop = asyncio.Event()
    stop.set()  # publish what the file holds, then return
    async with producer(KafkaAccess(bootstrap), "zstd") as p:
        await p.start()
        publisher = ResultPublisher(
            path=path,
            checkpoint_path=work / "ckpt.json",
            identity=Identity("r", "p", "e"),
            producer=p,
            topic=topic,
            metrics=PublisherMetrics(CollectorRegistry()),
            limits=Limits(max_samples=batch, max_group=max_group),
        )
        cpu, wall = time.process_time(), time.perf_counter()
        await publisher.run(stop)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        return publisher.samples_published, cpu, wall


def proc_cpu_s(pid: int) -> float:
    usage = process_usage(pid)
    assert usage is not None, f"process {pid} is gone"
    return usage.cpu_seconds


def cpu_share(
    bootstrap: str, rate: int, seconds: int, work: Path, labels: list[str] = QUOTED
) -> tuple[float, int]:
    jtl = work / "live.jtl"
    jtl.write_text(",".join(JMETER_DEFAULT_COLUMNS) + "\n")
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    asyncio.run(kafka_io.create_topics(bootstrap, [f"{prefix}.results.v1"], partitions=4))
    env = {
        **os.environ,
        "SHIBUYA_SIDECAR_KAFKA__BOOTSTRAP": bootstrap,
        "SHIBUYA_SIDECAR_KAFKA__TOPIC_PREFIX": prefix,
        "SHIBUYA_SIDECAR_WORK_DIR": str(work),
        "SHIBUYA_SIDECAR_HEALTH_PORT": "0",
    }
    sidecar = subprocess.Popen(
        [sys.executable, "-m", "shibuya", "sidecar", "tail", str(jtl), "--run-id", "bench"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Steady state only: one first batch parsed (its checkpoint written) pays the imports that
    # parsing and sending do on first use (pyarrow loads pandas: half a second of CPU).
    with jtl.open("a") as f:
        f.writelines(jtl_lines(100, int(time.time() * 1000), labels))
    wait_for(lambda: any(work.glob("checkpoint-*.json")), timeout_s=60, interval_s=0.1)
    time.sleep(1)  # its acknowledgement, and the producer's first metadata round
    lines = jtl_lines(rate // 10, int(time.time() * 1000), labels)
    start_cpu, start = proc_cpu_s(sidecar.pid), time.monotonic()
    with jtl.open("a") as f:
        for tick in range(seconds * 10):
            f.writelines(lines)
            f.flush()
            time.sleep(max(0.0, start + (tick + 1) / 10 - time.monotonic()))
    used = proc_cpu_s(sidecar.pid) - start_cpu
    elapsed = time.monotonic() - start
    sidecar.terminate()
    sidecar.wait(30)
    return used / elapsed, rate * seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--samples", type=int, default=500_000)
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--batch", type=int, action="append", default=[],
                    help=f"samples per batch; repeat to compare (default: {PREVIOUS_BATCH:,} "
                    f"and the sidecar's default, {DEFAULT_BATCH:,})")  # fmt: skip
    args = ap.parse_args()
    args.batch = args.batch or [PREVIOUS_BATCH, DEFAULT_BATCH]
    console = Console(width=140)
    for style, labels in (("quoted labels (worst case)", QUOTED), ("plain labels", PLAIN)):
        with tempfile.TemporaryDirectory() as tmp:
            run(console, args, Path(tmp), style, labels)


def run(
    console: Console, args: argparse.Namespace, work: Path, style: str, labels: list[str]
) -> None:
    path = work / "big.jtl"
    write_jtl(path, args.samples, labels)
    n = args.samples
    base = n / cpu_of(lambda: plain_csv(path))
    parse = {b: n / cpu_of(lambda: parse_only(path, b)) for b in args.batch}  # noqa: B023
    publish: dict[tuple[int, int], tuple[float, float]] = {}
    for batch in args.batch:
        for group in (1, Limits().max_group):
            (work / "ckpt.json").unlink(missing_ok=True)
            published, cpu, wall = asyncio.run(
                parse_publish(path, args.bootstrap, work, group, batch)
            )
            assert published == n, (published, n)
            publish[batch, group] = (n / cpu, n / wall)
    table = Table(
        title=f"sidecar throughput, {style}: {n:,} samples, "
        f"{path.stat().st_size / n:.0f} bytes/line; samples per CPU-second"
    )
    for col in ("case", "samples / CPU-s", "vs plain csv.reader", "samples/s (wall)"):
        table.add_column(col, justify="left" if col == "case" else "right")
    table.add_row("plain csv.reader pass (baseline)", f"{base:,.0f}", "1.00", "")
    for batch, rate in parse.items():
        table.add_row(f"parse into columnar batches of {batch:,} + encode", f"{rate:,.0f}",
                      f"{rate / base:.2f}", "")  # fmt: skip
    for (batch, group), (cpu, wall) in publish.items():
        how = "one batch a send" if group == 1 else f"groups of up to {group} (default)"
        table.add_row(f"parse + publish to Kafka (acked, zstd), batches of {batch:,}, {how}",
                      f"{cpu:,.0f}", f"{cpu / base:.2f}", f"{wall:,.0f}")  # fmt: skip
    console.print(table)
    share, total = cpu_share(args.bootstrap, args.rate, args.seconds, work, labels)
    console.print(
        f"CPU share of `shibuya sidecar tail`, {style}, while {args.rate:,} samples/s "
        f"are appended for {args.seconds}s ({total:,} samples): "
        f"{share * 100:.1f}% of one core (goal ≤ 3%)\n"
    )


if __name__ == "__main__":
    main()
