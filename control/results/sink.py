"""The ClickHouse sink: a consumer group on the stream's output topics, inserting idempotently.

It runs in the control process, which also answers the queries: the embedded engine (chdb) can
be opened by one process only, and with a ClickHouse server every API replica runs a sink in the
same consumer group, each inserting the partitions it owns. Topics are read ``read_committed``
(the stream writes in transactions); offsets are committed only after the rows are inserted, so
a crash re-inserts at most one batch, which the ReplacingMergeTree keys store once. A malformed
message is counted, logged with its position, and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import KafkaError
from clickhouse_connect.driver.exceptions import OperationalError
from prometheus_client import CollectorRegistry, Counter

from control.results.store import Store
from wire import (
    DecodeError,
    EngineStatus,
    LateMetrics,
    ResultBatch,
    RunStatus,
    SecondMetrics,
    Topic,
    decode_batch,
    decode_message,
    decode_metrics,
    decode_run_status,
    topic_name,
)

log = logging.getLogger(__name__)

METRICS_COLUMNS: Final = [
    "run_id", "scope", "plan_id", "label", "second", "source", "count", "failures", "codes",
    "bytes_recv", "bytes_sent", "elapsed_min_ms", "elapsed_max_ms", "elapsed_sum_ms",
    "threads_max", "elapsed_buckets", "elapsed_counts", "latency_buckets", "latency_counts",
    "connect_buckets", "connect_counts",
]  # fmt: skip
STATUS_COLUMNS: Final = [
    "collection_id", "plan_id", "engine_id", "engine_index", "run_id", "state", "ts", "threads",
    "cpu_cores", "memory_bytes", "samples_published", "malformed_lines", "exit_code", "detail",
]  # fmt: skip
RUN_STATUS_COLUMNS: Final = [
    "run_id", "collection_id", "project_id", "state", "updated", "started", "ended", "samples",
    "failures", "reason", "status",
]  # fmt: skip
RAW_COLUMNS: Final = [
    "run_id", "plan_id", "engine_id", "seq", "i", "ts", "elapsed_ms", "latency_ms", "connect_ms",
    "label", "code", "success", "bytes_recv", "bytes_sent", "threads",
]  # fmt: skip


def metrics_rows(message: SecondMetrics | LateMetrics) -> list[list[Any]]:
    if isinstance(message, LateMetrics):
        return [_metrics_row(r, message.source) for r in message.rows]
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
        s.malformed_lines, s.exit_code, s.detail,
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


class Sink:
    def __init__(
        self,
        store: Store,
        bootstrap: str,
        *,
        topic_prefix: str = "shibuya",
        group_id: str = "shibuya-clickhouse-sink",
        raw_samples: bool = False,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.store = store
        self.metrics = SinkMetrics(registry or CollectorRegistry())
        self._topics = {
            topic_name(Topic.METRICS, topic_prefix): "metrics",
            topic_name(Topic.ENGINE_STATUS, topic_prefix): "status",
            topic_name(Topic.RUN_STATUS, topic_prefix): "runs",
        }
        if raw_samples:
            self._topics[topic_name(Topic.RESULTS, topic_prefix)] = "raw"
        self._bootstrap = bootstrap
        self._group_id = group_id
        self._stopping = threading.Event()

    async def run(self) -> None:
        """Consume and insert until :meth:`stop`."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self._group_id,
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=5000,
            fetch_max_wait_ms=100,
            metadata_max_age_ms=5000,  # topics created after the sink started are found soon
        )
        await consumer.start()
        # Subscribed after start: a topic nobody created yet is then waited for, not an error.
        consumer.subscribe(list(self._topics))
        try:
            while not self._stopping.is_set():
                records = await consumer.getmany(timeout_ms=200)
                if not records:
                    continue
                batch = self._rows(r for rs in records.values() for r in rs)
                await self._insert(batch)
                with contextlib.suppress(KafkaError):  # a rebalance: the rows stay idempotent
                    await consumer.commit()
        finally:
            await consumer.stop()

    def stop(self) -> None:
        self._stopping.set()

    def stopping(self) -> bool:
        return self._stopping.is_set()

    def _rows(self, records: Iterable[ConsumerRecord[bytes, bytes]]) -> _Batch:
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
            except TRANSIENT as exc:
                if self._stopping.is_set():
                    raise
                log.warning("insert into %s failed, retrying: %r", table, exc)
                await asyncio.sleep(1)
            except Exception as exc:
                if len(rows) == 1:
                    log.error("ClickHouse refused a row for %s: %r: %r", table, exc, rows[0])
                    self.metrics.rejected.labels(table).inc()
                    return
                for row in rows:
                    await self._insert_rows(table, [row], columns)
                return
        self.metrics.rows.labels(table).inc(len(rows))


#: Errors after which the same insert may succeed (the server restarting, a network blip).
TRANSIENT: Final = (OperationalError, OSError)
