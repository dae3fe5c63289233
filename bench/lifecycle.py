"""How quickly the stream decides about runs: stop at the deadline, end after the engines,
stop on a breach — against the floor Kafka itself sets, measured in the same run.

One worker, engines as heartbeats (the integration tests' harness), generated result batches.
Each case runs ``--runs`` times; the table gives p50 and max and their ratio to the Kafka round
trip (produce → a consumer sees it) measured here first.

    .venv/bin/python -m bench.lifecycle --bootstrap 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.table import Table

from shibuya.dev import kafka_io
from tests.support.lifecycle import Harness
from tests.support.stream import Workers, generate, send
from tests.support.waiting import wait_until
from wire import Topic

GRACE_S, STOP_GRACE_S = 2, 1


async def kafka_round_trip_ms(bootstrap: str, topic: str, n: int) -> list[float]:
    await kafka_io.create_topics(bootstrap, [topic], partitions=1)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="latest",
                                fetch_max_wait_ms=100)  # fmt: skip
    await consumer.start()
    out = []
    try:
        await consumer.seek_to_end()
        async with kafka_io.producer(bootstrap) as producer:
            for i in range(n):
                t0 = time.perf_counter()
                await producer.send_and_wait(topic, str(i).encode())
                async for _ in consumer:
                    break
                out.append((time.perf_counter() - t0) * 1000)
    finally:
        await consumer.stop()
    return out


def _any(find: Callable[[str], Sequence[object]], run_id: str) -> Callable[[], bool]:
    return lambda: bool(find(run_id))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    prefix = f"benchlc{uuid.uuid4().hex[:6]}"
    baseline = asyncio.run(kafka_round_trip_ms(args.bootstrap, f"{prefix}.ping", 50))
    workers = Workers(args.bootstrap, prefix, Path(tempfile.mkdtemp(prefix="bench-lifecycle-")))
    workers.start(WINDOW_GRACE_S=str(GRACE_S), STOP_GRACE_S=str(STOP_GRACE_S),
                  ENGINE_LOST_S="5", RUN_SETTLE_S="20")  # fmt: skip
    h = Harness(args.bootstrap, prefix)
    stop_ms: list[float] = []
    end_ms: list[float] = []
    breach_ms: list[float] = []
    try:
        workers.wait_settled()
        for i in range(args.runs):
            run = f"d{i}-{prefix}"
            started = h.start_run(run, f"c{i}", duration_s=2)
            wait_until("a stop", _any(h.decisions.stops_of, run), 60, workers.logs)
            stop = h.decisions.stops_of(run)[0]
            stop_ms.append(stop.issued_ms - (started.started_ms + (2 + STOP_GRACE_S) * 1000))
            wait_until("the end", _any(h.decisions.ended_of, run), 60, workers.logs)
            end_ms.append(h.decisions.ended_of(run)[0].ended_ms - stop.issued_ms)
            slow = f"b{i}-{prefix}"
            h.start_run(slow, f"cb{i}", duration_s=600,
                        thresholds=("p95(elapsed) > 50ms for 1s abort",))  # fmt: skip
            t0 = int(time.time())
            gen = generate(slow, seconds=3, start_s=t0, engines=2, per_second=200)
            send(args.bootstrap, h.topics[Topic.RESULTS], gen.messages)
            wait_until("a breach", _any(h.decisions.stops_of, slow), 60, workers.logs)
            breach_ms.append(h.decisions.stops_of(slow)[0].issued_ms - (t0 + 1) * 1000)
    finally:
        h.close()
        workers.stop()
    floor = statistics.median(baseline)
    table = Table(title=f"run decisions, {args.runs} runs each (1 worker, grace {GRACE_S} s, "
                        "flush 0.5 s)")  # fmt: skip
    for col in ("case", "p50 ms", "max ms", "p50 / Kafka round trip"):
        table.add_column(col, justify="left" if col == "case" else "right")
    cases = [
        ("Kafka round trip (baseline: produce → consumed)", baseline),
        ("stop after the run's deadline", stop_ms),
        ("run end after its engines finished (no samples)", end_ms),
        ("stop after the first breaching second ended", breach_ms),
    ]
    for name, xs in cases:
        p50 = statistics.median(xs)
        table.add_row(name, f"{p50:,.0f}", f"{max(xs):,.0f}", f"{p50 / floor:,.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
