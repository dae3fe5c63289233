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

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

import numpy as np
import numpy.typing as npt
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

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
    text: tuple[str, str, str, str] | None = None
    """Its lines in each family (histogram, samples, failures, received), until it changes."""


class RunSeries:
    """The per-run series, exposed as text (:meth:`exposition`) that is rendered again only for
    the series that changed since the previous scrape.

    A scrape of a worker tracking 4 runs is ~1,600 series; through ``prometheus_client``'s
    collector path it costs ~20 ms of the worker's CPU (each sample validated and formatted
    anew), and the worker serves it under the GIL its agents need. ``bench/prom.py`` measures it.
    """

    def __init__(self, max_labels: int = 200) -> None:
        self.max_labels = max_labels
        self._runs: dict[str, dict[tuple[str, str], _Series]] = {}
        self._collections: dict[str, str] = {}
        self._lock = threading.Lock()  # observe (the event loop) against scrapes (a thread)
        self._body: bytes | None = None

    def observe(self, rows: Iterable[SecondMetrics]) -> None:
        with self._lock:
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
                s.text = None
                self._body = None

    def set_collection(self, run_id: str, collection_id: str) -> None:
        """Label the run's series with its collection (from run events)."""
        with self._lock:
            if self._collections.get(run_id) == collection_id:
                return
            self._collections[run_id] = collection_id
            for s in self._runs.get(run_id, {}).values():
                s.text = None
            self._body = None

    def drop_run(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)
            self._collections.pop(run_id, None)
            self._body = None

    def runs(self) -> list[str]:
        with self._lock:
            return sorted(self._runs)

    def exposition(self) -> bytes:
        """The series in Prometheus' text format (0.0.4)."""
        with self._lock:
            if self._body is None:
                self._body = self._render()
            return self._body

    def _render(self) -> bytes:
        families: tuple[list[str], list[str], list[str], list[str]] = ([], [], [], [])
        for run_id, series in self._runs.items():
            collection = _escape(self._collections.get(run_id, ""))
            run = _escape(run_id)
            for (plan, label), s in series.items():
                if s.text is None:
                    labels = (
                        f'collection="{collection}",plan="{_escape(plan)}",run="{run}",'
                        f'label="{_escape(label)}"'
                    )
                    s.text = _lines(labels, s)
                for family, text in zip(families, s.text, strict=True):
                    family.append(text)
        return "".join(
            head + "".join(lines) for head, lines in zip(_HEADS, families, strict=True)
        ).encode()


_HEADS: Final = tuple(
    f"# HELP {name} {help}\n# TYPE {name} {kind}\n"
    for name, help, kind in (
        ("shibuya_response_time_seconds", "elapsed time of samples", "histogram"),
        ("shibuya_samples_total", "samples", "counter"),
        ("shibuya_failures_total", "failed samples", "counter"),
        ("shibuya_received_bytes_total", "bytes received by samples", "counter"),
    )
)
_LE: Final = [*(str(le) for le in LE_SECONDS), "+Inf"]


def _lines(labels: str, s: _Series) -> tuple[str, str, str, str]:
    cumulative = np.cumsum(s.le_counts[:-1]).tolist()
    cumulative.append(s.count)
    elapsed = "".join(
        f'shibuya_response_time_seconds_bucket{{{labels},le="{le}"}} {c}\n'
        for le, c in zip(_LE, cumulative, strict=True)
    )
    elapsed += (
        f"shibuya_response_time_seconds_count{{{labels}}} {s.count}\n"
        f"shibuya_response_time_seconds_sum{{{labels}}} {s.sum_ms / 1000.0!r}\n"
    )
    return (
        elapsed,
        f"shibuya_samples_total{{{labels}}} {s.count}\n",
        f"shibuya_failures_total{{{labels}}} {s.failures}\n",
        f"shibuya_received_bytes_total{{{labels}}} {s.bytes_recv}\n",
    )


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


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


def serve(port: int, host: str, registry: CollectorRegistry, series: RunSeries) -> None:
    """Serve ``/metrics`` — the registry's series, then the runs' — from a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/", "/metrics"):
                self.send_error(404)
                return
            body = generate_latest(registry) + series.exposition()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a scrape is not news

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
