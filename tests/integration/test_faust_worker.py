"""A real Faust worker (its own process) against the real broker: per-engine state, restart.

The aggregate agent counts samples per (run, engine) and drops redelivered batches by (engine,
sequence); both travel in the state record committed with each flush. After a restart the
worker reads that record back, so a batch redelivered across the restart is still dropped and
counting goes on from where it was.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shibuya.dev import kafka_io
from shibuya.dev.engine_counts import engine_counts
from shibuya.dev.worker_proc import WorkerProcess
from tests.support.stream import Workers, send
from tests.support.waiting import wait_until
from wire import BatchBuilder, Topic, encode_batch, result_key, topic_name

PARTITIONS = 4


def _batch(engine: str, seq: int, n: int) -> bytes:
    b = BatchBuilder()
    for i in range(n):
        b.add(
            ts_ms=1_764_288_000_000 + i,
            elapsed_ms=i % 300,
            label=f"L{i % 3}",
            code="200",
            success=True,
        )
    return encode_batch(b.build(run_id="run-1", plan_id="p", engine_id=engine, seq=seq))


async def _progress_until(
    bootstrap: str, app_id: str, expected: dict[str, int], worker: WorkerProcess
) -> dict[str, int]:
    """Follow the worker's committed state until every engine shows the expected count."""
    counts: dict[str, int] = {}
    try:
        async with asyncio.timeout(60):
            async with engine_counts(bootstrap, app_id) as updates:
                async for counts in updates:
                    if counts == expected:
                        return counts
    except TimeoutError:
        pytest.fail(f"counted {counts}, expected {expected}\n{worker.log_tail()}")
    raise AssertionError("unreachable")


def _batches(worker: WorkerProcess, outcome: str, expected: float) -> float:
    """The worker's batch counter for ``outcome`` once it equals ``expected`` (or at the deadline).

    Counters of messages on other partitions may trail the table by a moment: poll, don't sleep.
    """
    series = f'shibuya_ingest_batches_total{{outcome="{outcome}"}}'
    wait_until(
        f"{series} = {expected}",
        lambda: worker.metrics().get(series, 0.0) == expected,
        30,
        worker.log_tail,
    )
    return worker.metrics().get(series, 0.0)


def test_worker_counts_exactly_and_restores_its_table(
    kafka_bootstrap: str, unique: str, tmp_path: Path, workers: Workers
) -> None:
    results = topic_name(Topic.RESULTS, unique)
    worker = workers.start()
    asyncio.run(kafka_io.wait_for_topics(kafka_bootstrap, [results], timeout_s=60))

    engines = [f"e{i}" for i in range(5)]
    first = [
        (result_key("run-1", e), _batch(e, seq, 100 + seq)) for e in engines for seq in range(4)
    ]
    redelivered = first[-1]
    malformed = (result_key("run-1", "e0"), b"SHRB\x01 but truncated")
    send(kafka_bootstrap, results, [*first, redelivered, malformed])

    per_engine = sum(100 + seq for seq in range(4))
    expected = {f"run-1/{e}": per_engine for e in engines}
    assert asyncio.run(_progress_until(kafka_bootstrap, unique, expected, worker)) == expected
    assert _batches(worker, "applied", 20) == 20
    assert _batches(worker, "duplicate", 1) == 1
    assert _batches(worker, "malformed", 1) == 1
    assert worker.metrics()["shibuya_ingest_samples_total"] == 5 * per_engine
    assert "skipped malformed result message" in worker.log.read_text()

    assert worker.stop(), "the worker did not stop gracefully on SIGTERM"
    restarted = workers.start()
    # Across the restart: the same last batch again (dropped), then one new batch of e0.
    send(kafka_bootstrap, results, [redelivered, (result_key("run-1", "e0"), _batch("e0", 4, 7))])
    expected["run-1/e0"] += 7
    assert asyncio.run(_progress_until(kafka_bootstrap, unique, expected, restarted)) == expected
    assert _batches(restarted, "duplicate", 1) == 1
    assert _batches(restarted, "applied", 1) == 1
