"""Generated runs for the stream tests, with their exact expected aggregates.

A run of several engines and labels, one second of samples per batch, with failures, several
response codes and log-normal latencies; one engine lagging behind the others with its samples
shuffled in time; redelivered batches; a malformed message. :class:`Expected` is computed from
the unique samples by brute force, independently of the code under test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aiokafka.partitioner import murmur2

from control.results.clickhouse import Store
from control.results.queries import QUANTILES
from shibuya.dev import kafka_io
from shibuya.dev.worker_proc import WorkerProcess
from tests.support.waiting import wait_until
from wire import BatchBuilder, encode_batch, result_key, run_key

T0_S = 1_764_288_000


@dataclass
class Expected:
    """Exact aggregates of the unique samples sent."""

    cells: dict[tuple[str, int], dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    elapsed: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    seconds: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def total(self) -> int:
        return sum(self.seconds.values())

    def add(self, label: str, ts_ms: int, elapsed: int, ok: bool, recv: int, sent: int) -> None:
        cell = self.cells[(label, ts_ms // 1000)]
        cell["count"] += 1
        cell["failures"] += 0 if ok else 1
        cell["bytes_recv"] += recv
        cell["bytes_sent"] += sent
        self.elapsed[label].append(elapsed)
        self.seconds[ts_ms // 1000] += 1

    def percentile(self, label: str, q: float) -> float:
        """Exact nearest-rank quantile."""
        return float(np.percentile(self.elapsed[label], q * 100, method="inverted_cdf"))


@dataclass(frozen=True)
class Sample:
    ts_ms: int
    elapsed_ms: int
    latency_ms: int
    connect_ms: int
    label: str
    code: str
    success: bool
    bytes_recv: int
    bytes_sent: int
    all_threads: int


@dataclass
class GeneratedRun:
    run_id: str
    messages: list[tuple[bytes, bytes]]
    expected: Expected
    duplicates: int


def generate(
    run_id: str,
    *,
    engines: int = 4,
    seconds: int = 8,
    per_second: int = 400,
    labels: int = 5,
    seed: int = 7,
    start_s: int = T0_S,
) -> GeneratedRun:
    rng = random.Random(seed)
    expected = Expected()
    batches: list[list[tuple[bytes, bytes]]] = [[] for _ in range(seconds)]
    for e in range(engines):
        engine = f"e{e}"
        lagging = e == engines - 1
        for s in range(seconds):
            b = BatchBuilder()
            rows: list[Sample] = []
            for i in range(per_second):
                ok = rng.random() > 0.04
                rows.append(
                    Sample(
                        ts_ms=(start_s + s) * 1000 + (i * 1000) // per_second,
                        elapsed_ms=max(0, int(rng.lognormvariate(4.5, 0.8))),
                        latency_ms=rng.randint(0, 50),
                        connect_ms=rng.randint(0, 5),
                        label=f"GET /item/{rng.randrange(labels)}",
                        code="200" if ok else rng.choice(["500", "503"]),
                        success=ok,
                        bytes_recv=rng.randint(100, 5000),
                        bytes_sent=rng.randint(50, 300),
                        all_threads=10 + e,
                    )
                )
            if lagging:
                rng.shuffle(rows)  # samples out of time order within the batch
            for r in rows:
                b.add(**dataclasses.asdict(r))
                expected.add(r.label, r.ts_ms, r.elapsed_ms, r.success, r.bytes_recv, r.bytes_sent)
            message = (
                result_key(run_id, engine),
                encode_batch(b.build(run_id=run_id, plan_id="plan-a", engine_id=engine, seq=s)),
            )
            # The lagging engine's second s travels with the others' second s + 1.
            batches[min(seconds - 1, s + 1) if lagging else s].append(message)
    messages = [m for group in batches for m in group]
    duplicates = [messages[3], messages[len(messages) // 2], messages[-1]]
    malformed = (result_key(run_id, "e0"), b"SHRB\x01 truncated")
    return GeneratedRun(
        run_id=run_id,
        messages=[*messages[:10], malformed, *messages[10:], *duplicates],
        expected=expected,
        duplicates=len(duplicates),
    )


def late_batch(run_id: str, second: int, n: int, expected: Expected) -> tuple[bytes, bytes]:
    """A batch from a new engine for a second long closed."""
    b = BatchBuilder()
    for i in range(n):
        ts = second * 1000 + i
        b.add(ts_ms=ts, elapsed_ms=100 + i, label="GET /item/0", code="200", success=True,
              bytes_recv=10, bytes_sent=1)  # fmt: skip
        expected.add("GET /item/0", ts, 100 + i, True, 10, 1)
    return result_key(run_id, "late"), encode_batch(
        b.build(run_id=run_id, plan_id="plan-a", engine_id="late", seq=0)
    )


@dataclass
class Workers:
    """Stream workers of one test, each its own process, sharing app id and topic prefix."""

    bootstrap: str
    app_id: str
    tmp: Path
    partitions: int = 4
    started: list[WorkerProcess] = field(default_factory=list)

    def start(self, **settings: str) -> WorkerProcess:
        """One more worker; ``settings`` are ``SHIBUYA_WORKER_*`` variables, on top of a grace
        period of 2 s."""
        n = len(self.started)
        w = WorkerProcess.start(
            bootstrap=self.bootstrap,
            app_id=self.app_id,
            topic_prefix=self.app_id,
            partitions=self.partitions,
            data_dir=self.tmp / f"w{n}",
            log=self.tmp / f"worker{n}.log",
            settings={"WINDOW_GRACE_S": "2", **settings},
        )
        self.started.append(w)
        return w

    def wait_settled(self, timeout_s: float = 90) -> None:
        """Wait until the group has taken in every worker started: each owns partitions, and
        together they own each partition once."""

        def settled() -> bool:
            owned = [w.metrics().get("shibuya_owned_partitions", 0) for w in self.started]
            return all(owned) and sum(owned) == self.partitions

        wait_until("the consumer group to settle", settled, timeout_s, self.logs)

    def summed(self, series: str) -> float:
        """A Prometheus series summed over the workers."""
        return sum(w.metrics().get(series, 0.0) for w in self.started)

    def logs(self) -> str:
        return "\n".join(w.log_tail(30) for w in self.started)

    def stop(self) -> bool:
        """SIGTERM every worker; True if all stopped gracefully."""
        return all([w.stop() for w in self.started])


def partition_of(run_id: str, partitions: int) -> int:
    """The partition of a run's partials and rows (Kafka's default partitioner, murmur2)."""
    return int(murmur2(run_key(run_id)) & 0x7FFFFFFF) % partitions


def send(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    async def go() -> None:
        async with kafka_io.producer(bootstrap) as p:
            for key, value in messages:
                await p.send(topic, value, key=key)

    asyncio.run(go())


def run_total(store: Store, run_id: str) -> int:
    rows = store.query_sync(
        "SELECT sum(count) FROM metrics_second FINAL WHERE run_id = {run:String} AND scope = 'run'",
        {"run": run_id},
    )
    return int(rows[0][0]) if rows else 0


def wait_for_total(store: Store, run_id: str, total: int, timeout_s: float = 90) -> int:
    wait_until(f"{total} samples of {run_id} in ClickHouse",
               lambda: run_total(store, run_id) >= total, timeout_s,
               lambda: f"counted {run_total(store, run_id)}")  # fmt: skip
    return run_total(store, run_id)


def label_cells(store: Store, run_id: str) -> dict[tuple[str, int], dict[str, Any]]:
    rows = store.query_sync(
        """SELECT label, toUnixTimestamp(second) AS s, sum(count), sum(failures),
                  sum(bytes_recv), sum(bytes_sent)
           FROM metrics_second FINAL
           WHERE run_id = {run:String} AND scope = 'label' GROUP BY label, s""",
        {"run": run_id},
    )
    return {
        (r[0], int(r[1])): {"count": r[2], "failures": r[3], "bytes_recv": r[4], "bytes_sent": r[5]}
        for r in rows
    }


def expected_cells(expected: Expected) -> dict[tuple[str, int], dict[str, Any]]:
    return {k: dict(v) for k, v in expected.cells.items()}


__all__ = ["QUANTILES", "Expected", "GeneratedRun", "generate", "late_batch", "send"]
