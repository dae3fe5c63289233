"""Prometheus series of the runs a worker owns: histograms (never summaries) and counters.

Fed with the final per-second rows as the merge agent commits them, so each sample is counted by
exactly one worker (the owner of its run) once: ``sum()`` over workers gives the run's totals.
Series are labelled ``collection, plan, run, label``; past ``max_labels`` labels per run, rows
count under ``(other labels)``. The series of a run go when the run's state expires at its owner
or its partition moves to another worker.

The ``le`` bounds are fixed in seconds. Rows carry ``log2pct`` buckets (1.02 wide), so a value
within 1 % of a bound may be counted on the other side of it; ``_count`` and ``_sum`` are exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from streams import histogram
from streams.aggregate import OVERFLOW_LABEL
from wire import SecondMetrics

LE_SECONDS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
# The le slot of each log2pct bucket: the first bound its representative value does not exceed.
_SLOT: Final = np.searchsorted(
    np.array(LE_SECONDS) * 1000.0, histogram.representative(np.arange(histogram.MAX_BUCKET + 1))
)
LABELS: Final = ["collection", "plan", "run", "label"]


@dataclass
class _Series:
    le_counts: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(len(LE_SECONDS) + 1, np.int64)
    )
    sum_ms: int = 0
    count: int = 0
    failures: int = 0
    bytes_recv: int = 0


class RunSeries(Collector):
    def __init__(self, max_labels: int = 200) -> None:
        self.max_labels = max_labels
        self._runs: dict[str, dict[tuple[str, str], _Series]] = {}
        self.collections: dict[str, str] = {}
        """Run → collection, when known (from run events); ``""`` otherwise."""

    def observe(self, rows: Iterable[SecondMetrics]) -> None:
        for row in rows:
            if row.plan_id is None or row.label is None or not row.count:
                continue  # run-total rows: Prometheus sums the label series itself
            series = self._runs.setdefault(row.run_id, {})
            label = row.label
            if (row.plan_id, label) not in series and len(series) >= self.max_labels:
                label = OVERFLOW_LABEL
            s = series.get((row.plan_id, label))
            if s is None:
                s = series[(row.plan_id, label)] = _Series()
            np.add.at(s.le_counts, _SLOT[row.elapsed.buckets], row.elapsed.counts)
            s.sum_ms += row.elapsed_sum_ms
            s.count += row.count
            s.failures += row.failures
            s.bytes_recv += row.bytes_recv

    def drop_run(self, run_id: str) -> None:
        self._runs.pop(run_id, None)
        self.collections.pop(run_id, None)

    def runs(self) -> list[str]:
        return sorted(self._runs)

    def collect(self) -> Iterator[Metric]:
        elapsed = HistogramMetricFamily(
            "shibuya_response_time_seconds", "elapsed time of samples", labels=LABELS
        )
        samples = CounterMetricFamily("shibuya_samples", "samples", labels=LABELS)
        failures = CounterMetricFamily("shibuya_failures", "failed samples", labels=LABELS)
        received = CounterMetricFamily(
            "shibuya_received_bytes", "bytes received by samples", labels=LABELS
        )
        for run_id, series in list(self._runs.items()):
            collection = self.collections.get(run_id, "")
            for (plan, label), s in series.items():
                values = [collection, plan, run_id, label]
                cumulative = np.cumsum(s.le_counts)
                buckets = [
                    (str(le), float(c)) for le, c in zip(LE_SECONDS, cumulative, strict=False)
                ]
                buckets.append(("+Inf", float(s.count)))
                elapsed.add_metric(values, buckets, s.sum_ms / 1000.0)
                samples.add_metric(values, s.count)
                failures.add_metric(values, s.failures)
                received.add_metric(values, s.bytes_recv)
        yield from (elapsed, samples, failures, received)


class ConsumerLag(Collector):
    """``shibuya_consumer_lag{topic,partition}``: messages not yet taken in, per partition an
    agent has consumed from since it took the partition over.

    ``positions`` gives each agent's next offset; ``highwater`` the partition's end as last
    fetched by the consumer. On transactional topics (partials) the end counts the transaction
    markers too, so a drained partition may show a lag of a few.
    """

    def __init__(
        self,
        positions: Callable[[], Iterable[tuple[str, int, int]]],
        highwater: Callable[[str, int], int | None],
    ) -> None:
        self._positions = positions
        self._highwater = highwater

    def collect(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "shibuya_consumer_lag", "messages not yet consumed", labels=["topic", "partition"]
        )
        for topic, partition, position in self._positions():
            end = self._highwater(topic, partition)
            if end is not None and end >= 0:
                lag.add_metric([topic, str(partition)], max(0, end - position))
        yield lag
