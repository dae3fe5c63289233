"""What each engine's results cost the sidecar, against JMeter's in the same run.

    .venv/bin/python bench/engines.py --bootstrap 127.0.0.1:9092 [--rate 10000] [--seconds 20]

Every engine reaches the pipeline through a results file the sidecar tails: JMeter's CSV (its 17
default columns), the CSV Locust's request hook writes (11 columns, with URLs and exception
texts), the CSV Gatling's launcher writes (8 columns), and the JSON lines of any other engine.
For each, on the same synthetic samples (20 labels, 2 % failures):

1. parse throughput: samples per CPU-second of this process, into columnar batches, encoded;
2. the CPU share of a ``shibuya sidecar tail`` process while a writer appends ``--rate``
   samples/s to its file for ``--seconds`` (read from /proc), publishing to Kafka (zstd).

Ratios are against JMeter's format, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from engine_sidecar.jtl import ErrorReport
from engine_sidecar.jtl_format import JMETER_DEFAULT_COLUMNS
from engine_sidecar.procstats import process_usage
from engine_sidecar.reader import parser_for
from shibuya.dev import kafka_io
from wire import BatchBuilder, encode_batch

LABELS = [f"GET /api/item/{i}" for i in range(20)]
Line = Callable[[int, int], str]  # (sample index, its start in ms) → one line


def jmeter(i: int, ts: int) -> str:
    ok = i % 50 != 0
    return (f"{ts},{20 + i % 300},{LABELS[i % 20]},{200 if ok else 500},"
            f"{'OK' if ok else 'Internal Server Error'},users 1-{i % 50},text,"
            f"{'true' if ok else 'false'},,{1000 + i % 700},180,50,100,"
            f"http://127.0.0.1:8000/api/item/{i % 20},{10 + i % 200},0,{i % 5}\n")  # fmt: skip


def locust(i: int, ts: int) -> str:
    ok = i % 50 != 0
    failure = "" if ok else "HTTPError: 500 Server Error: Internal Server Error for url: /x"
    return (f"{ts},{20 + i % 300},{LABELS[i % 20]},{200 if ok else 500},"
            f"{'OK' if ok else 'Internal Server Error'},{'true' if ok else 'false'},{failure},"
            f"{1000 + i % 700},50,50,http://127.0.0.1:8000/api/item/{i % 20}\n")  # fmt: skip


def gatling(i: int, ts: int) -> str:
    ok = i % 50 != 0
    failure = "" if ok else '"status.find.in([200, 209], 304), found 500"'
    return (f"{ts},{20 + i % 300},{LABELS[i % 20]},{200 if ok else 500},"
            f"{'true' if ok else 'false'},{failure},50,50\n")  # fmt: skip


def json_lines(i: int, ts: int) -> str:
    ok = i % 50 != 0
    sample = {"ts_ms": ts, "elapsed_ms": 20 + i % 300, "label": LABELS[i % 20], "success": ok,
              "code": "200" if ok else "500", "message": "" if ok else "Internal Server Error",
              "threads": 50}  # fmt: skip
    return json.dumps(sample) + "\n"


FORMATS: list[tuple[str, str, Line]] = [
    ("JMeter CSV, 17 columns (baseline)", ",".join(JMETER_DEFAULT_COLUMNS) + "\n", jmeter),
    ("Locust's hook CSV, 11 columns", "timeStamp,elapsed,label,responseCode,responseMessage,"
     "success,failureMessage,bytes,grpThreads,allThreads,URL\n", locust),
    ("Gatling's launcher CSV, 8 columns", "timeStamp,elapsed,label,responseCode,success,"
     "failureMessage,grpThreads,allThreads\n", gatling),
    ("JSON lines", "", json_lines),
]  # fmt: skip


def parse_rate(header: str, line: Line, n: int) -> float:
    """Samples parsed (and encoded in batches of 2,000) per CPU-second."""
    t0 = 1_764_288_000_000
    data = (header + "".join(line(i, t0 + i // 10) for i in range(n))).encode()
    start = time.process_time()
    head = data[: data.index(b"\n") + 1]
    parser, builder, seq = parser_for(head, 64 * 1024, ErrorReport()), BatchBuilder(), 0
    for i in range(0, len(data), 256 * 1024):
        parser.feed(data[i : i + 256 * 1024], builder)
        if len(builder) >= 2000:
            encode_batch(builder.build(run_id="r", plan_id="p", engine_id="e", seq=seq))
            seq += 1
    encode_batch(builder.build(run_id="r", plan_id="p", engine_id="e", seq=seq))
    assert parser.errors.count == 0, parser.errors.summary()
    return n / (time.process_time() - start)


def proc_cpu_s(pid: int) -> float:
    usage = process_usage(pid)
    assert usage is not None, f"process {pid} is gone"
    return usage.cpu_seconds


def tail_share(bootstrap: str, header: str, line: Line, rate: int, seconds: int,
               work: Path) -> float:  # fmt: skip
    """The CPU share of a tail-only sidecar while ``rate`` samples/s are appended."""
    path = work / "results"
    path.write_text(header)
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    asyncio.run(kafka_io.create_topics(bootstrap, [f"{prefix}.results.v1"], partitions=4))
    env = {**os.environ, "SHIBUYA_SIDECAR_KAFKA__BOOTSTRAP": bootstrap,
           "SHIBUYA_SIDECAR_KAFKA__TOPIC_PREFIX": prefix, "SHIBUYA_SIDECAR_WORK_DIR": str(work),
           "SHIBUYA_SIDECAR_HEALTH_PORT": "0"}  # fmt: skip
    sidecar = subprocess.Popen(
        [sys.executable, "-m", "shibuya", "sidecar", "tail", str(path), "--run-id", "bench"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(3)  # imports, the producer: steady state is what is measured
    start_cpu, start = proc_cpu_s(sidecar.pid), time.monotonic()
    with path.open("a") as f:
        for tick in range(seconds * 10):
            ts = int(time.time() * 1000)
            f.writelines(line(tick * rate // 10 + i, ts) for i in range(rate // 10))
            f.flush()
            time.sleep(max(0.0, start + (tick + 1) / 10 - time.monotonic()))
    share = (proc_cpu_s(sidecar.pid) - start_cpu) / (time.monotonic() - start)
    sidecar.terminate()
    sidecar.wait(30)
    return share


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--samples", type=int, default=300_000, help="for the parse throughput")
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--seconds", type=int, default=20)
    args = ap.parse_args()
    rows = []
    for name, header, line in FORMATS:
        with tempfile.TemporaryDirectory() as tmp:
            rate = parse_rate(header, line, args.samples)
            share = tail_share(args.bootstrap, header, line, args.rate, args.seconds, Path(tmp))
        rows.append((name, len(line(1, 1_764_288_000_000)), rate, share))
    table = Table(title=f"the sidecar's cost per engine's results format: parse throughput "
                  f"({args.samples:,} samples) and CPU share of `shibuya sidecar tail` at "
                  f"{args.rate:,} samples/s for {args.seconds} s")  # fmt: skip
    for col in ("format", "bytes/sample", "samples / CPU-s", "vs JMeter", "CPU share",
                "vs JMeter"):  # fmt: skip
        table.add_column(col, justify="left" if col == "format" else "right")
    _, _, base_rate, base_share = rows[0]
    for name, size, rate, share in rows:
        table.add_row(name, str(size), f"{rate:,.0f}", f"{rate / base_rate:.2f}",
                      f"{share * 100:.1f}%", f"{share / base_share:.2f}")  # fmt: skip
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
