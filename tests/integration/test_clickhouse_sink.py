"""The ClickHouse sink and schema on the real engine (chdb) and the real broker."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from control.results import schema
from control.results.clickhouse import Store
from control.results.queries import Results
from control.results.sink import METRICS_COLUMNS, Sink, metrics_rows
from shibuya.dev import kafka_io
from shibuya.dev.results import running_sink
from tests.golden import MESSAGES
from tests.support.stream import send
from tests.support.waiting import wait_until
from wire import (
    BatchBuilder,
    EngineState,
    EngineStatus,
    SecondMetrics,
    Topic,
    Topics,
    collection_key,
    encode_batch,
    encode_message,
    result_key,
    topic_name,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _count(store: Store, sql: str, **params: str) -> int:
    return int(store.query_sync(sql, params)[0][0])


def test_migrations_apply_once_and_record_the_version(tmp_path: Path, clickhouse: Store) -> None:
    assert schema.migrate(clickhouse.client) == []  # the session fixture migrated already
    assert schema.version(clickhouse.client) == schema.LATEST
    tables = {r[0] for r in clickhouse.query_sync("SHOW TABLES")}
    assert {
        "metrics_second",
        "engine_status",
        "samples_raw",
        "schema_migrations",
        "run_summary",
    } <= tables


UPGRADE = """
import sys
from pathlib import Path
import clickhouse_connect
from control.results import schema

Path(sys.argv[1]).mkdir()
c = clickhouse_connect.get_client(dsn="chdb:///" + sys.argv[1])
latest = schema.MIGRATIONS
schema.MIGRATIONS = latest[:3]  # a store as the version before failure messages left it
print(schema.migrate(c))
c.command("INSERT INTO metrics_second (run_id, scope, plan_id, label, second, source, count, "
          "failures, codes) VALUES ('old', 'run', '', '', 100, '', 3, 1, map('500', 1))")
c.command("INSERT INTO engine_status (collection_id, engine_id, state, ts) "
          "VALUES ('c', 'e', 'idle', now64(3))")
schema.MIGRATIONS = latest
print(schema.migrate(c))
print(c.query("SELECT failed, codes, failure_messages FROM run_summary "
              "WHERE run_id = 'old'").result_rows)
print(c.query("SELECT engine_id, exiting FROM engine_status").result_rows)
c.close()
"""


def test_a_store_from_before_failure_messages_is_upgraded_in_place(tmp_path: Path) -> None:
    """Migrations 4 and 5 on rows stored before them: no failure messages, no last heartbeat."""
    out = subprocess.run([sys.executable, "-c", UPGRADE, str(tmp_path / "ch")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    assert out.stdout.splitlines() == [
        "[1, 2, 3]",
        "[4, 5]",
        "[(1, {'500': 1}, {})]",
        "[('e', False)]",
    ], out.stderr


def test_engine_status_and_raw_samples_are_stored_and_bad_messages_counted(
    kafka_bootstrap: str, unique: str, clickhouse: Store
) -> None:
    status_topic = topic_name(Topic.ENGINE_STATUS, unique)
    results = topic_name(Topic.RESULTS, unique)
    asyncio.run(kafka_io.create_topics(kafka_bootstrap, [status_topic, results], partitions=2))
    now_ms = int(time.time() * 1000)  # recent: both tables expire old rows (TTL)
    statuses = [
        EngineStatus(
            engine_id=f"{unique}-e{i}",
            collection_id=unique,
            plan_id="p",
            engine_index=i,
            state=EngineState.RUNNING,
            ts_ms=now_ms + i,
            run_id="r1",
            threads=10,
            cpu_cores=0.5,
            memory_bytes=2**28,
            exiting=i == 2,  # the sidecar's last heartbeat
        )
        for i in range(3)
    ]
    b = BatchBuilder()
    for i in range(40):
        b.add(ts_ms=now_ms + i, elapsed_ms=i, label="L", code="200", success=True)
    batch = b.build(run_id=f"run-{unique}", plan_id="p", engine_id="e0", seq=0)
    sink = Sink(clickhouse, Topics(unique), raw_samples=True)
    with running_sink(clickhouse, kafka_bootstrap, topic_prefix=unique, sink=sink):
        send(
            kafka_bootstrap,
            status_topic,
            [(collection_key(unique), encode_message(s)) for s in statuses]
            + [(collection_key(unique), b'{"kind":"engine_status","v":9}')],
        )
        send(kafka_bootstrap, results, [(result_key(batch.run_id, "e0"), encode_batch(batch))] * 2)
        stored = "SELECT count() FROM engine_status FINAL WHERE collection_id = {c:String}"
        wait_until(
            "3 engine statuses stored", lambda: _count(clickhouse, stored, c=unique) == 3, 30
        )
        raw = "SELECT count() FROM samples_raw FINAL WHERE run_id = {r:String}"
        wait_until(
            "40 raw samples stored", lambda: _count(clickhouse, raw, r=batch.run_id) == 40, 30
        )
        wait_until(
            "the malformed status counted",
            lambda: sink.metrics.malformed.labels(status_topic)._value.get() == 1,
            10,
        )
    row = clickhouse.query_sync(
        "SELECT engine_index, state, threads, cpu_cores, memory_bytes, toUnixTimestamp64Milli(ts),"
        " exiting FROM engine_status FINAL WHERE engine_id = {e:String}",
        {"e": f"{unique}-e2"},
    )
    assert row == [(2, "running", 10, 0.5, 2**28, now_ms + 2, True)]
    heard = asyncio.run(Results(clickhouse).engines(unique, now_ms - 1000))
    assert [(h.engine_id, h.exiting) for h in heard] == [
        (f"{unique}-e0", False), (f"{unique}-e1", False), (f"{unique}-e2", True)
    ]  # fmt: skip


def test_follow_yields_each_second_once_in_order(clickhouse: Store, unique: str) -> None:
    golden = MESSAGES["second_metrics_v1.json"]
    assert isinstance(golden, SecondMetrics)
    rows = []
    for s in range(3):
        m = msgspec.structs.replace(
            golden, run_id=unique, plan_id=None, label=None, second_s=golden.second_s + s
        )
        rows += metrics_rows(m)
    clickhouse.insert_sync("metrics_second", rows, METRICS_COLUMNS)

    async def first(n: int) -> list[int]:
        out = []
        async with asyncio.timeout(10):
            async for second in Results(clickhouse).follow(unique, poll_s=0.05):
                out.append(second.second)
                if len(out) == n:
                    return out
        return out

    assert asyncio.run(first(3)) == [golden.second_s + s for s in range(3)]
