"""The ClickHouse schema, versioned: migrations applied in order, each recorded once.

``metrics_second`` holds the stream's final per-second rows (``scope='label'`` per plan and
label, ``scope='run'`` over the whole run) and its late rows (``source`` = the partial they came
from; ``''`` on final rows). It is a ReplacingMergeTree keyed by window and source, so a row
delivered twice is stored once: read it with ``FINAL``. Histograms are stored as sorted
``log2pct`` buckets and counts, so any percentile over any set of rows is recomputed by adding
counts (``sumMap``) — see :mod:`control.results.queries`. So are response codes and failure
messages (maps of samples). ``run_summary`` is a view over it: the whole run per label and in
total.
"""

from __future__ import annotations

import logging
from typing import Any, Final

log = logging.getLogger(__name__)

_HIST = """
    {h}_buckets Array(UInt16),
    {h}_counts Array(UInt64),"""

MIGRATIONS: Final[list[tuple[int, str, list[str]]]] = [
    (
        1,
        "per-second metrics, engine status history, raw samples",
        [
            """
            CREATE TABLE IF NOT EXISTS metrics_second (
                run_id String,
                scope Enum8('label' = 1, 'run' = 2),
                plan_id String,
                label String,
                second DateTime('UTC'),
                source String,
                count UInt64,
                failures UInt64,
                codes Map(String, UInt64),
                bytes_recv UInt64,
                bytes_sent UInt64,
                elapsed_min_ms UInt64,
                elapsed_max_ms UInt64,
                elapsed_sum_ms UInt64,
                threads_max UInt32,"""
            + "".join(_HIST.format(h=h) for h in ("elapsed", "latency", "connect"))
            + """
                inserted_at DateTime64(3) DEFAULT now64(3)
            )
            ENGINE = ReplacingMergeTree(inserted_at)
            ORDER BY (run_id, scope, plan_id, label, second, source)
            """,
            """
            CREATE TABLE IF NOT EXISTS engine_status (
                collection_id String,
                plan_id String,
                engine_id String,
                engine_index UInt32,
                run_id String,
                state LowCardinality(String),
                ts DateTime64(3, 'UTC'),
                threads UInt32,
                cpu_cores Nullable(Float64),
                memory_bytes Nullable(UInt64),
                samples_published UInt64,
                malformed_lines UInt64,
                exit_code Nullable(Int32),
                detail String
            )
            ENGINE = ReplacingMergeTree
            ORDER BY (collection_id, engine_id, ts, state)
            TTL toDateTime(ts) + INTERVAL 90 DAY
            """,
            """
            CREATE TABLE IF NOT EXISTS samples_raw (
                run_id String,
                plan_id String,
                engine_id String,
                seq UInt64,
                i UInt32,
                ts DateTime64(3, 'UTC'),
                elapsed_ms UInt32,
                latency_ms UInt32,
                connect_ms UInt32,
                label LowCardinality(String),
                code LowCardinality(String),
                success UInt8,
                bytes_recv UInt64,
                bytes_sent UInt64,
                threads UInt32
            )
            ENGINE = ReplacingMergeTree
            ORDER BY (run_id, engine_id, seq, i)
            TTL toDateTime(ts) + INTERVAL 7 DAY
            """,
        ],
    ),
]

MIGRATIONS.append(
    (
        2,
        "run summary view",
        [
            # Whole-run aggregates per label (scope 'label') and per run (scope 'run'): counts
            # added, histograms merged with sumMap — percentiles are computed from these, never
            # averaged. A view, so it always includes late rows and needs no backfill. (Aliases
            # differ from the column names: ClickHouse would resolve `count` in sumIf to sum().)
            """
            CREATE VIEW IF NOT EXISTS run_summary AS
            SELECT
                run_id, scope, plan_id, label,
                sum(count) AS samples,
                sum(failures) AS failed,
                sum(bytes_recv) AS received_bytes,
                sum(bytes_sent) AS sent_bytes,
                min(elapsed_min_ms) AS fastest_ms,
                max(elapsed_max_ms) AS slowest_ms,
                sum(elapsed_sum_ms) AS elapsed_total_ms,
                min(second) AS first_second,
                max(second) AS last_second,
                sumMap(elapsed_buckets, elapsed_counts) AS elapsed_hist,
                sumMap(latency_buckets, latency_counts) AS latency_hist,
                sumMap(connect_buckets, connect_counts) AS connect_hist,
                sumMap(codes) AS codes,
                sumIf(count, source != '') AS late_samples
            FROM metrics_second FINAL
            GROUP BY run_id, scope, plan_id, label
            """,
        ],
    )
)

MIGRATIONS.append(
    (
        3,
        "run status",
        [
            # The latest RunStatus of each run from the compacted run-status topic (the runs
            # agent's operator view): a few columns to filter on, the whole message as JSON.
            """
            CREATE TABLE IF NOT EXISTS run_status (
                run_id String,
                collection_id String,
                project_id String,
                state LowCardinality(String),
                updated DateTime64(3, 'UTC'),
                started DateTime64(3, 'UTC'),
                ended Nullable(DateTime64(3, 'UTC')),
                samples UInt64,
                failures UInt64,
                reason String,
                status String
            )
            ENGINE = ReplacingMergeTree(updated)
            ORDER BY run_id
            """,
        ],
    )
)


def _with_messages(view: str) -> str:
    """The summary view of migration 2, replaced by one that also adds up failure messages."""
    out = view.replace("CREATE VIEW IF NOT EXISTS", "CREATE OR REPLACE VIEW").replace(
        "sumMap(codes) AS codes,", "sumMap(codes) AS codes, sumMap(failure_messages) AS "
        "failure_messages,"
    )  # fmt: skip
    assert out.count("failure_messages") == 2, out
    assert out.count("CREATE OR REPLACE") == 1, out
    return out


MIGRATIONS.append(
    (
        4,
        "failure messages",
        [
            # Failed samples per failure message of each row (they add up to its failures);
            # rows stored before this have none.
            "ALTER TABLE metrics_second ADD COLUMN IF NOT EXISTS "
            "failure_messages Map(String, UInt64) AFTER codes",
            _with_messages(MIGRATIONS[1][2][0]),
        ],
    )
)

MIGRATIONS.append(
    (
        5,
        "a sidecar's last heartbeat",
        [
            # The heartbeat a sidecar sends as it goes away: its engine is no longer deployed.
            "ALTER TABLE engine_status ADD COLUMN IF NOT EXISTS exiting Bool DEFAULT false",
        ],
    )
)

LATEST: Final = MIGRATIONS[-1][0]


def migrate(client: Any) -> list[int]:
    """Apply the migrations the database lacks, in order; return the versions applied."""
    client.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version UInt32, description String, applied_at DateTime64(3) DEFAULT now64(3)"
        ") ENGINE = MergeTree ORDER BY version"
    )
    done = {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}
    applied = []
    for version, description, statements in MIGRATIONS:
        if version in done:
            continue
        for statement in statements:
            client.command(statement)
        client.insert(
            "schema_migrations", [[version, description]], column_names=["version", "description"]
        )
        log.info("ClickHouse schema: applied migration %d (%s)", version, description)
        applied.append(version)
    return applied


def version(client: Any) -> int:
    rows = client.query("SELECT max(version) FROM schema_migrations").result_rows
    return int(rows[0][0]) if rows else 0
