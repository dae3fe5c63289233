"""Raw batches → partials → final rows → ClickHouse: exact, with one and two real workers.

Real broker, real worker processes, the real ClickHouse engine (chdb) behind the sink. Counts,
failures and bytes must match the inputs exactly per label and second; percentiles within 1 % of
the exact nearest-rank value; redelivered and malformed messages count nothing; late samples are
kept as late rows and reported; a SIGKILLed worker loses and repeats nothing.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from control.results.queries import QUANTILES, Results
from control.results.store import Store
from shibuya.dev import kafka_io
from shibuya.dev.procs import wait_for
from shibuya.dev.results import running_sink
from shibuya.dev.worker_proc import WorkerProcess
from streams.wire import Topic, topic_name
from tests.integration.stream_support import (
    expected_cells,
    generate,
    label_cells,
    late_batch,
    send,
    wait_for_total,
)

pytestmark = pytest.mark.integration
PARTITIONS = 4


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for w in started:
        w.stop()


def _start(
    workers: list[WorkerProcess],
    bootstrap: str,
    unique: str,
    tmp: Path,
    **settings: str,
) -> WorkerProcess:
    w = WorkerProcess.start(
        bootstrap=bootstrap,
        app_id=unique,
        topic_prefix=unique,
        partitions=PARTITIONS,
        data_dir=tmp / f"w{len(workers)}",
        log=tmp / f"worker{len(workers)}.log",
        settings={"WINDOW_GRACE_S": "2", **settings},
    )
    workers.append(w)
    return w


def _summed(workers: list[WorkerProcess], series: str) -> float:
    return sum(w.metrics().get(series, 0.0) for w in workers)


def _logs(workers: list[WorkerProcess]) -> str:
    return "\n".join(w.log_tail(30) for w in workers)


@pytest.mark.parametrize("n_workers", [1, 2])
def test_rows_in_clickhouse_are_exact(
    kafka_bootstrap: str,
    unique: str,
    tmp_path: Path,
    workers: list[WorkerProcess],
    clickhouse: Store,
    n_workers: int,
) -> None:
    results = topic_name(Topic.RESULTS, unique)
    for _ in range(n_workers):
        _start(workers, kafka_bootstrap, unique, tmp_path)
    asyncio.run(kafka_io.wait_for_topics(kafka_bootstrap, [results], timeout_s=60))
    run = generate(f"run-{unique}")
    expected = run.expected

    with running_sink(clickhouse, kafka_bootstrap, topic_prefix=unique):
        send(kafka_bootstrap, results, run.messages)
        total = wait_for_total(clickhouse, run.run_id, expected.total)
        assert total == expected.total, _logs(workers)
        assert label_cells(clickhouse, run.run_id) == expected_cells(expected)

        report = asyncio.run(Results(clickhouse).report(run.run_id))
        assert report.total is not None
        assert report.total.count == expected.total
        assert report.late_samples == 0
        for summary in report.labels:
            assert summary.label is not None
            for q in QUANTILES:
                exact = expected.percentile(summary.label, q)
                assert summary.percentiles[q] == pytest.approx(exact, rel=0.01), (summary.label, q)
        series = asyncio.run(Results(clickhouse).series(run.run_id))
        assert {s.second: s.count for s in series} == dict(expected.seconds)

        # A new engine delivers samples for a second whose window closed long ago.
        late = late_batch(run.run_id, min(expected.seconds), 50, expected)
        send(kafka_bootstrap, results, [late])
        assert wait_for_total(clickhouse, run.run_id, expected.total) == expected.total
        assert label_cells(clickhouse, run.run_id) == expected_cells(expected)
        report = asyncio.run(Results(clickhouse).report(run.run_id))
        assert report.late_samples == 50

    assert wait_for(lambda: _summed(workers, "shibuya_late_samples_total") == 50, timeout_s=10)
    duplicate = 'shibuya_ingest_batches_total{outcome="duplicate"}'
    malformed = 'shibuya_ingest_batches_total{outcome="malformed"}'
    assert _summed(workers, duplicate) == run.duplicates
    assert _summed(workers, malformed) == 1
    assert _summed(workers, "shibuya_ingest_samples_total") == expected.total
    assert all(w.stop() for w in workers), "a worker did not stop gracefully"


def test_sigkilled_worker_loses_and_repeats_nothing(
    kafka_bootstrap: str,
    unique: str,
    tmp_path: Path,
    workers: list[WorkerProcess],
    clickhouse: Store,
) -> None:
    results = topic_name(Topic.RESULTS, unique)
    # Offsets committed often and flushes far apart: acking input before its flush commits
    # would lose samples in nearly every kill.
    often = {"COMMIT_INTERVAL_S": "0.2", "FLUSH_INTERVAL_S": "2"}
    worker = _start(workers, kafka_bootstrap, unique, tmp_path, **often)
    asyncio.run(kafka_io.wait_for_topics(kafka_bootstrap, [results], timeout_s=60))
    run = generate(f"run-{unique}", engines=6, seconds=20, per_second=300)
    expected = run.expected

    def paced() -> None:  # about 4 s of traffic, so the kill lands mid-stream
        chunk = max(1, len(run.messages) // 40)
        for i in range(0, len(run.messages), chunk):
            send(kafka_bootstrap, results, run.messages[i : i + chunk])
            time.sleep(0.1)

    with running_sink(clickhouse, kafka_bootstrap, topic_prefix=unique):
        sender = threading.Thread(target=paced)
        sender.start()
        samples = "shibuya_ingest_samples_total"
        assert wait_for(lambda: worker.metrics().get(samples, 0) > expected.total / 4, 60)
        worker.kill()
        assert sender.is_alive(), "the kill should land while batches are still arriving"
        sender.join()
        restarted = _start(workers, kafka_bootstrap, unique, tmp_path, **often)
        total = wait_for_total(clickhouse, run.run_id, expected.total)
        assert total == expected.total, _logs(workers)
        assert label_cells(clickhouse, run.run_id) == expected_cells(expected)
        assert restarted.stop(), "the restarted worker did not stop gracefully"
