"""The ClickHouse sink: the stream's output messages stored as rows, idempotently.

:class:`Sink` turns a batch of messages from the stream's output topics (per-second metrics,
engine statuses, run statuses, and raw batches if asked) into rows and inserts them. A consumer
group feeds it (:func:`control.services.followers.clickhouse_sink`) and commits the batch's
offsets only after :meth:`Sink.store_messages` returned, so a crash re-inserts at most one
batch, which the ReplacingMergeTree keys store once. A malformed message is counted, logged
with its position, and skipped; a row ClickHouse refuses is counted, logged, and the rest of its
batch kept; while ClickHouse is unreachable the insert is retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from prometheus_client import CollectorRegistry, Counter

from control.errors import RejectedError, UnavailableError
from control.results.clickhouse import Store
from wire import (
    DecodeError,
    EngineStatus,
    LateMetrics,
    MetricsMessage,
    MetricsRows,
    ResultBatch,
    RunStatus,
    SecondMetrics,
    Topics,
    decode_batch,
    decode_message,
    decode_metrics,
    decode_run_status,
)

log = logging.getLogger(__name__)

METRICS_COLUMNS: Final = [
    "run_id", "scope", "plan_id", "label", "second", "source", "count", "failures", "codes",
    "failure_messages", "bytes_recv", "bytes_sent", "elapsed_min_ms", "elapsed_max_ms",
    "elapsed_sum_ms", "threads_max", "elapsed_buckets", "elapsed_counts", "latency_buckets",
    "latency_counts", "connect_buckets", "connect_counts",
]  # fmt: skip
STATUS_COLUMNS: Final = [
    "collection_id", "plan_id", "engine_id", "engine_index", "run_id", "state", "ts", "threads",
    "cpu_cores", "memory_bytes", "samples_published", "malformed_lines", "exit_code", "detail",
    "exiting",
]  # fmt: skip
RUN_STATUS_COLUMNS: Final = [
    "run_id", "collection_id", "project_id", "state", "updated", "started", "ended", "samples",
    "failures", "reason", "status",
]  # fmt: skip
RAW_COLUMNS: Final = [
    "run_id", "plan_id", "engine_id", "seq", "i", "ts", "elapsed_ms", "latency_ms", "connect_ms",
    "label", "code", "success", "bytes_recv", "bytes_sent", "threads",
]  # fmt: skip


def metrics_rows(message: MetricsMessage) -> list[list[Any]]:
    if isinstance(message, LateMetrics):
        return [_metrics_row(r, message.source) for r in message.rows]
    if isinstance(message, MetricsRows):
        return [_metrics_row(r, "") for r in message.rows]
    return [_metrics_row(message, "")]


def _metrics_row(m: SecondMetrics, source: str) -> list[Any]:
    total = m.plan_id is None and m.label is None
    return [
        m.run_id,
        "run" if total else "label",
        m.plan_id or "",
        m.label or "",
        m.second_s,
        source,
        m.count,
        m.failures,
        m.codes,
        m.failure_messages,
        m.bytes_recv,
        m.bytes_sent,
        m.elapsed_min_ms,
        m.elapsed_max_ms,
        m.elapsed_sum_ms,
        m.threads_max,
        *(x for h in (m.elapsed, m.latency, m.connect) for x in _sorted(h.buckets, h.counts)),
    ]


def _sorted(buckets: list[int], counts: list[int]) -> tuple[list[int], list[int]]:
    order = sorted(range(len(buckets)), key=buckets.__getitem__)
    return [buckets[i] for i in order], [counts[i] for i in order]


def status_row(s: EngineStatus) -> list[Any]:
    return [
        s.collection_id, s.plan_id, s.engine_id, s.engine_index, s.run_id or "", s.state.value,
        s.ts_ms, s.threads, s.cpu_cores, s.memory_bytes, s.samples_published,
        s.malformed_lines, s.exit_code, s.detail, s.exiting,
    ]  # fmt: skip


def run_status_row(s: RunStatus, raw: bytes) -> list[Any]:
    return [
        s.run_id, s.collection_id, s.project_id, s.state, s.updated_ms, s.started_ms, s.ended_ms,
        s.samples, s.failures, s.reason, raw.decode(),
    ]  # fmt: skip


def raw_rows(b: ResultBatch) -> list[list[Any]]:
    n = len(b)
    columns: list[list[Any]] = [
        [b.run_id] * n,
        [b.plan_id] * n,
        [b.engine_id] * n,
        [b.seq] * n,
        list(range(n)),
        b.ts_ms.tolist(),  # DateTime64(3) takes milliseconds as integers
        b.elapsed_ms.tolist(),
        b.latency_ms.tolist(),
        b.connect_ms.tolist(),
        [b.labels[i] for i in b.label_idx.tolist()],
        [b.codes[i] for i in b.code_idx.tolist()],
        b.success.tolist(),
        b.bytes_recv.tolist(),
        b.bytes_sent.tolist(),
        b.all_threads.tolist(),
    ]
    return [list(row) for row in zip(*columns, strict=True)]


class SinkMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.rows = Counter(
            "shibuya_sink_rows", "rows inserted into ClickHouse", ["table"], registry=registry
        )
        self.rejected = Counter(
            "shibuya_sink_rejected_rows", "rows ClickHouse refused", ["table"], registry=registry
        )
        self.malformed = Counter(
            "shibuya_sink_malformed", "messages skipped as malformed", ["topic"], registry=registry
        )


@dataclass
class _Batch:
    metrics: list[list[Any]] = field(default_factory=list)
    status: list[list[Any]] = field(default_factory=list)
    runs: list[list[Any]] = field(default_factory=list)
    raw: list[list[Any]] = field(default_factory=list)


class Message(Protocol):
    """A message read from a topic."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def value(self) -> bytes | None: ...


class Sink:
    def __init__(
        self,
        store: Store,
        topics: Topics,
        *,
        raw_samples: bool = False,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.store = store
        self.metrics = SinkMetrics(registry or CollectorRegistry())
        self._topics = {topics.metrics: "metrics", topics.engine_status: "status",
                        topics.run_status: "runs"}  # fmt: skip
        if raw_samples:
            self._topics[topics.results] = "raw"
        self.stopping: Callable[[], bool] = lambda: False
        """While it is false, an insert ClickHouse cannot take now is retried."""

    @property
    def topics(self) -> list[str]:
        """The topics whose messages it stores."""
        return list(self._topics)

    async def store_messages(self, messages: Iterable[Message]) -> None:
        await self._insert(self._rows(messages))

    def _rows(self, records: Iterable[Message]) -> _Batch:
        batch = _Batch()
        for r in records:
            kind = self._topics[r.topic]
            try:
                if r.value is None:
                    raise DecodeError(kind, "empty message")
                if kind == "metrics":
                    batch.metrics.extend(metrics_rows(decode_metrics(r.value)))
                elif kind == "status":
                    batch.status.append(status_row(decode_message(r.value, EngineStatus)))
                elif kind == "runs":
                    batch.runs.append(run_status_row(decode_run_status(r.value), r.value))
                else:
                    batch.raw.extend(raw_rows(decode_batch(r.value)))
            except DecodeError as exc:
                log.warning(
                    "skipped malformed message at %s[%d]@%d: %s",
                    r.topic,
                    r.partition,
                    r.offset,
                    exc,
                )
                self.metrics.malformed.labels(r.topic).inc()
        return batch

    async def _insert(self, batch: _Batch) -> None:
        for table, rows, columns in (
            ("metrics_second", batch.metrics, METRICS_COLUMNS),
            ("engine_status", batch.status, STATUS_COLUMNS),
            ("run_status", batch.runs, RUN_STATUS_COLUMNS),
            ("samples_raw", batch.raw, RAW_COLUMNS),
        ):
            if rows:
                await self._insert_rows(table, rows, columns)

    async def _insert_rows(self, table: str, rows: list[list[Any]], columns: list[str]) -> None:
        """Insert, retrying while ClickHouse is unreachable; a batch ClickHouse refuses is
        retried row by row, so one bad row is rejected (counted, logged) and the rest kept."""
        while True:
            try:
                await self.store.insert(table, rows, columns)
                break
            except UnavailableError as exc:
                if self.stopping():
                    raise
                log.warning("insert into %s failed, retrying: %s", table, exc)
                await asyncio.sleep(1)
            except RejectedError as exc:
                if len(rows) == 1:
                    log.error("ClickHouse refused a row for %s: %s: %r", table, exc, rows[0])
                    self.metrics.rejected.labels(table).inc()
                    return
                for row in rows:
                    await self._insert_rows(table, [row], columns)
                return
        self.metrics.rows.labels(table).inc(len(rows))
