"""Raw batches → partials → final rows → ClickHouse: exact, with one and two real workers.

Real broker, real worker processes, the real ClickHouse engine (chdb) behind the sink. Counts,
failures and bytes must match the inputs exactly per label and second; percentiles within 1 % of
the exact nearest-rank value; redelivered and malformed messages count nothing; late samples are
kept as late rows and reported; a SIGKILLed worker loses and repeats nothing; a real Prometheus
scraping two workers sums their series to the input.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from control.results.clickhouse import Store
from control.results.queries import QUANTILES, Results
from shibuya.dev import kafka_io
from shibuya.dev.results import running_sink
from tests.support.prometheus import Prometheus
from tests.support.stream import (
    Workers,
    expected_cells,
    generate,
    label_cells,
    late_batch,
    partition_of,
    send,
    wait_for_total,
)
from tests.support.waiting import wait_until
from wire import BatchBuilder, Topic, encode_batch, result_key, topic_name

pytestmark = pytest.mark.integration
PARTITIONS = 4


@pytest.mark.parametrize("n_workers", [1, 2])
def test_rows_in_clickhouse_are_exact(
    kafka_bootstrap: str,
    unique: str,
    tmp_path: Path,
    workers: Workers,
    clickhouse: Store,
    n_workers: int,
) -> None:
    results = topic_name(Topic.RESULTS, unique)
    for _ in range(n_workers):
        workers.start()
    asyncio.run(kafka_io.wait_for_topics(kafka_bootstrap, [results], timeout_s=60))
    run = generate(f"run-{unique}")
    expected = run.expected

    with running_sink(clickhouse, kafka_bootstrap, topic_prefix=unique):
        send(kafka_bootstrap, results, run.messages)
        total = wait_for_total(clickhouse, run.run_id, expected.total)
        assert total == expected.total, workers.logs()
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

    wait_until(
        "50 late samples counted",
        lambda: workers.summed("shibuya_late_samples_total") == 50,
        10,
        workers.logs,
    )
    duplicate = 'shibuya_ingest_batches_total{outcome="duplicate"}'
    malformed = 'shibuya_ingest_batches_total{outcome="malformed"}'
    assert workers.summed(duplicate) == run.duplicates
    assert workers.summed(malformed) == 1
    assert workers.summed("shibuya_ingest_samples_total") == expected.total
    # The results partitions the workers consumed from are reported, fully consumed.
    lag = [
        value
        for w in workers.started
        for series, value in w.metrics().items()
        if series.startswith("shibuya_consumer_lag{") and f'topic="{results}"' in series
    ]
    assert lag
    assert sum(lag) == 0
    assert workers.stop(), "a worker did not stop gracefully"


def test_a_run_s_seconds_close_once_each_engine_has_sent_its_last_batch(
    kafka_bootstrap: str, unique: str, workers: Workers, clickhouse: Store
) -> None:
    """Every engine's last batch (empty, marked ``last``: what a sidecar sends as it stops)
    closes the run's seconds at once. The grace period here is two minutes: without the marks,
    the last seconds would wait that long and the sources' silence before closing."""
    results = topic_name(Topic.RESULTS, unique)
    workers.start(WINDOW_GRACE_S="120")
    asyncio.run(kafka_io.wait_for_topics(kafka_bootstrap, [results], timeout_s=60))
    run = generate(f"run-{unique}", seconds=4)
    lasts = [
        (result_key(run.run_id, engine), encode_batch(replace(
            BatchBuilder().build(run_id=run.run_id, plan_id="plan-a", engine_id=engine, seq=4),
            last=True,
        )))
        for engine in ("e0", "e1", "e2", "e3")
    ]  # fmt: skip
    with running_sink(clickhouse, kafka_bootstrap, topic_prefix=unique):
        send(kafka_bootstrap, results, run.messages + lasts)
        total = wait_for_total(clickhouse, run.run_id, run.expected.total, timeout_s=60)
        assert total == run.expected.total, workers.logs()
        assert label_cells(clickhouse, run.run_id) == expected_cells(run.expected)


@pytest.mark.parametrize("takeover", ["restart", "survivor"])
def test_sigkilled_worker_loses_and_repeats_nothing(
    kafka_bootstrap: str,
    unique: str,
    tmp_path: Path,
    workers: Workers,
    clickhouse: Store,
    takeover: str,
) -> None:
    """The killed worker's partitions go on at a restarted worker, or at the other worker."""
    results = topic_name(Topic.RESULTS, unique)
    # Offsets committed often and flushes far apart: acking input before its flush commits
    # would lose samples in nearly every kill.
    often = {"COMMIT_INTERVAL_S": "0.2", "FLUSH_INTERVAL_S": "2"}
    worker = workers.start(**often)
    if takeover == "survivor":
        other = workers.start(**often)
        joined = "shibuya_rebalances_total"
        wait_until(
            "the second worker to join",
            lambda: other.metrics().get(joined, 0) >= 1,
            60,
            workers.logs,
        )
    asyncio.run(kafka_io.wait_for_topics(kafka_bootstrap, [results], timeout_s=60))
    run = generate(f"run-{unique}", engines=6, seconds=20, per_second=300)
    expected = run.expected

    def paced() -> None:  # paces the producer (about 4 s of traffic) so the kill lands mid-stream
        chunk = max(1, len(run.messages) // 40)
        for i in range(0, len(run.messages), chunk):
            send(kafka_bootstrap, results, run.messages[i : i + chunk])
            time.sleep(0.1)

    with running_sink(clickhouse, kafka_bootstrap, topic_prefix=unique):
        sender = threading.Thread(target=paced)
        sender.start()
        samples = "shibuya_ingest_samples_total"
        wait_until(
            "an eighth of the samples aggregated",
            lambda: worker.metrics().get(samples, 0) > expected.total / 8,
            60,
            workers.logs,
        )
        worker.kill()
        assert sender.is_alive(), "the kill should land while batches are still arriving"
        sender.join()
        successor = workers.start(**often) if takeover == "restart" else other
        total = wait_for_total(clickhouse, run.run_id, expected.total)
        assert total == expected.total, workers.logs()
        assert label_cells(clickhouse, run.run_id) == expected_cells(expected)
        assert successor.stop(), "the worker that took over did not stop gracefully"


def test_prometheus_sums_two_workers_to_the_input(
    kafka_bootstrap: str,
    unique: str,
    tmp_path: Path,
    workers: Workers,
) -> None:
    """Each run's series come from its owner only, so sum() over the workers is exact."""
    results = topic_name(Topic.RESULTS, unique)
    for _ in range(2):
        workers.start()
    asyncio.run(kafka_io.wait_for_topics(kafka_bootstrap, [results], timeout_s=60))
    # One run on each partials partition, so that both workers own some.
    run_ids: dict[int, str] = {}
    for i in range(1000):
        run_ids.setdefault(partition_of(f"run-{unique}-{i}", PARTITIONS), f"run-{unique}-{i}")
    runs = [generate(run_id, engines=3, seconds=4, seed=p) for p, run_id in run_ids.items()]
    assert len(runs) == PARTITIONS
    prometheus = Prometheus.start(
        tmp_path / "prometheus", [f"127.0.0.1:{w.metrics_port}" for w in workers.started]
    )
    try:
        send(kafka_bootstrap, results, [m for run in runs for m in run.messages])
        for run in runs:
            selector = f'{{run="{run.run_id}"}}'
            expected = float(run.expected.total)

            def summed(metric: str, selector: str = selector) -> float | None:
                return prometheus.scalar(f"sum({metric}{selector})")

            def complete(expected: float = expected) -> bool:
                return summed("shibuya_samples_total") == expected

            wait_until(
                f"Prometheus to sum {expected} samples",
                complete,
                90,
                lambda: f"{summed('shibuya_samples_total')}\n{workers.logs()}",
            )
            assert summed("shibuya_response_time_seconds_count") == expected
            failures = sum(c["failures"] for c in run.expected.cells.values())
            assert summed("shibuya_failures_total") == failures
            per_label = prometheus.query(f"shibuya_samples_total{selector}")
            assert len(per_label) == 5  # one series per label, from exactly one worker
        owners = {
            r["metric"]["instance"]  # type: ignore[index]
            for r in prometheus.query(f'shibuya_samples_total{{run=~"run-{unique}-.*"}}')
        }
        assert len(owners) == 2, "each worker exports the runs it owns"
    finally:
        prometheus.stop()
