"""Golden files: one canonical example of every wire format, as bytes.

``tests/golden/*.bin|*.json`` are the contract. Producer-side tests assert that encoding the
objects below gives exactly those bytes; consumer-side tests decode the files. Changing a format
on purpose means a new version: add a new file, never rewrite an old one. After adding one, run
``python -m tests.golden`` to write the missing files (existing files are left alone).
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np

from wire import (
    COLUMNS,
    BatchBuilder,
    CriterionResult,
    EngineCounts,
    EngineState,
    EngineStatus,
    Histogram,
    LateMetrics,
    LiveRow,
    LiveSeconds,
    MetricsRows,
    PlanFile,
    PlanSpec,
    PurgeDeadlines,
    PurgeEngines,
    ResultBatch,
    RunEnded,
    RunOutcome,
    RunStarted,
    RunStatus,
    RunStopRequested,
    SecondMetrics,
    StartEngines,
    StopEngines,
    TransitionInfo,
    encode_batch,
    encode_message,
)

GOLDEN_DIR = Path(__file__).parent
T0_MS = 1_764_288_000_000  # 2025-11-28T00:00:00Z


def result_batch() -> ResultBatch:
    """Two labels with a comma, a quote and non-ASCII text; a failure with a message."""
    b = BatchBuilder()
    b.add(
        ts_ms=T0_MS + 5,
        elapsed_ms=120,
        latency_ms=80,
        connect_ms=3,
        label='GET /a, "b"',
        code="200",
        success=True,
        bytes_recv=1523,
        bytes_sent=210,
        grp_threads=5,
        all_threads=10,
    )
    b.add(
        ts_ms=T0_MS,
        elapsed_ms=2_000_000,
        latency_ms=0,
        connect_ms=0,
        label="POST /ü",
        code="Non HTTP response code: java.net.ConnectException",
        success=False,
        bytes_recv=2**40,
        bytes_sent=0,
        grp_threads=5,
        all_threads=10,
        message="Connection refused",
    )
    b.add(
        ts_ms=T0_MS + 999,
        elapsed_ms=0,
        latency_ms=0,
        connect_ms=0,
        label='GET /a, "b"',
        code="200",
        success=True,
        bytes_recv=0,
        bytes_sent=0,
        grp_threads=1,
        all_threads=1,
    )
    return b.build(run_id="run-42", plan_id="plan-7", engine_id="c1-plan-7-0", seq=3)


def _hist(buckets: list[int], counts: list[int]) -> Histogram:
    return Histogram(scheme="log2pct", buckets=buckets, counts=counts)


def _failed_second(plan_id: str | None, label: str | None) -> SecondMetrics:
    """One failed sample's second, as a label's row or (``None``, ``None``) the run's."""
    return SecondMetrics(
        run_id="run-42", plan_id=plan_id, label=label, second_s=T0_MS // 1000 + 1, count=1,
        failures=1, codes={"500": 1}, bytes_recv=90, bytes_sent=105, elapsed_min_ms=45,
        elapsed_max_ms=45, elapsed_sum_ms=45, threads_max=10, elapsed=_hist([220], [1]),
        latency=_hist([200], [1]), connect=_hist([0], [1]),
        failure_messages={"Internal Server Error": 1},
    )  # fmt: skip


MESSAGES: dict[str, msgspec.Struct] = {
    "engine_status_v1.json": EngineStatus(
        engine_id="c1-plan-7-0",
        collection_id="c1",
        plan_id="plan-7",
        engine_index=0,
        state=EngineState.RUNNING,
        ts_ms=T0_MS,
        run_id="run-42",
        command_id="cmd-1",
        threads=50,
        cpu_cores=0.75,
        memory_bytes=512 * 2**20,
        samples_published=123_456,
        malformed_lines=2,
        detail="",
    ),
    "run_started_v1.json": RunStarted(
        run_id="run-42",
        collection_id="c1",
        project_id="p1",
        started_ms=T0_MS,
        plans=[
            PlanSpec(
                plan_id="plan-7", engines=3, threads_per_engine=50, ramp_up_s=30, duration_s=600
            )
        ],
        thresholds=["p95(elapsed) > 500ms for 30s", "error_rate > 5% over 60s"],
    ),
    "run_stop_requested_v1.json": RunStopRequested(
        run_id="run-42", requested_ms=T0_MS + 60_000, reason="stopped by alice"
    ),
    "run_ended_v1.json": RunEnded(
        run_id="run-42",
        ended_ms=T0_MS + 600_000,
        outcome=RunOutcome.FINISHED,
        reason="duration reached",
    ),
    "run_status_v1.json": RunStatus(
        run_id="run-42",
        collection_id="c1",
        project_id="p1",
        state="aborted",
        updated_ms=T0_MS + 95_000,
        started_ms=T0_MS,
        ended_ms=T0_MS + 95_000,
        engines=EngineCounts(expected=3, started=3, finished=3),
        samples=1_234_567,
        failures=98_765,
        first_second_s=T0_MS // 1000,
        last_second_s=T0_MS // 1000 + 90,
        criteria=[
            CriterionResult(
                criterion="error_rate > 5% over 60s",
                passed=False,
                breach_second_s=T0_MS // 1000 + 88,
                value=0.08,
            ),
            CriterionResult(criterion="p95(elapsed) > 500ms for 30s", passed=True),
        ],
        transitions=[
            TransitionInfo(at_ms=T0_MS, state="deploying", reason="run started"),
            TransitionInfo(
                at_ms=T0_MS + 2_000, state="running", reason="engine c1-plan-7-0 running"
            ),
            TransitionInfo(
                at_ms=T0_MS + 89_000,
                state="stopping",
                reason="criterion breached: error_rate > 5% over 60s (value 0.08)",
            ),
            TransitionInfo(
                at_ms=T0_MS + 95_000,
                state="aborted",
                reason="ended early: error_rate > 5% over 60s",
            ),
        ],
        reason="ended early: error_rate > 5% over 60s",
    ),
    "command_start_v1.json": StartEngines(
        command_id="cmd-1",
        collection_id="c1",
        run_id="run-42",
        plan_id="plan-7",
        engine_count=3,
        threads_per_engine=50,
        ramp_up_s=30,
        duration_s=600,
        files=[
            PlanFile(
                name="plan.jmx",
                url="http://127.0.0.1:8080/api/files/f1",
                size_bytes=2048,
                sha256="0" * 63 + "1",
            )
        ],
        file_token="tok",
        split_csv=True,
        issued_ms=T0_MS,
        properties={"target.host": "staging.example", "users": "50"},
    ),
    "command_stop_v1.json": StopEngines(
        command_id="cmd-2",
        collection_id="c1",
        run_id="run-42",
        plan_id=None,
        reason="duration reached",
        issued_ms=T0_MS + 600_000,
    ),
    "command_purge_v1.json": PurgeEngines(
        command_id="cmd-3", collection_id="c1", reason="idle for 15m", issued_ms=T0_MS + 900_000
    ),
    "second_metrics_v1.json": SecondMetrics(
        run_id="run-42",
        plan_id="plan-7",
        label='GET /a, "b"',
        second_s=T0_MS // 1000,
        count=2,
        failures=0,
        codes={"200": 2},
        bytes_recv=1523,
        bytes_sent=210,
        elapsed_min_ms=0,
        elapsed_max_ms=120,
        elapsed_sum_ms=120,
        threads_max=10,
        elapsed=_hist([0, 242], [1, 1]),
        latency=_hist([0, 222], [1, 1]),
        connect=_hist([0, 56], [1, 1]),
    ),
    "late_metrics_v1.json": LateMetrics(
        run_id="run-42",
        source="shibuya.partials.v1/3@1207",
        rows=[
            SecondMetrics(
                run_id="run-42",
                plan_id=None,
                label=None,
                second_s=T0_MS // 1000 - 60,
                count=1,
                failures=1,
                codes={"503": 1},
                bytes_recv=0,
                bytes_sent=210,
                elapsed_min_ms=30_000,
                elapsed_max_ms=30_000,
                elapsed_sum_ms=30_000,
                threads_max=10,
                elapsed=_hist([521], [1]),
                latency=_hist([0], [1]),
                connect=_hist([0], [1]),
                failure_messages={"Service Unavailable": 1},
            )
        ],
    ),
    "metrics_rows_v1.json": MetricsRows(
        run_id="run-42",
        rows=[_failed_second("plan-7", "GET /b"), _failed_second(None, None)],  # same samples
    ),
    "live_seconds_v1.json": LiveSeconds(
        run_id="run-42",
        closed_s=T0_MS // 1000 - 4,
        rows=[  # one label's second so far, and the run's (the same samples)
            LiveRow(
                plan_id=plan,
                label=label,
                second_s=T0_MS // 1000 - 1,
                count=2,
                failures=1,
                bytes_recv=1523,
                bytes_sent=210,
                elapsed_sum_ms=120,
                threads_max=10,
                elapsed=(12.0, 108.0, 108.0, 108.0, 108.0),
            )
            for plan, label in (("plan-7", 'GET /a, "b"'), (None, None))
        ],
    ),
    "purge_deadlines_v1.json": PurgeDeadlines(
        source="shibuya.commands.v1/3", deadlines_ms={"c1": T0_MS + 900_000}
    ),
}


def golden_bytes() -> dict[str, bytes]:
    out = {"result_batch_v1.bin": encode_batch(result_batch())}
    out.update({name: encode_message(m) + b"\n" for name, m in MESSAGES.items()})
    return out


def write_missing() -> list[str]:
    written = []
    for name, data in golden_bytes().items():
        path = GOLDEN_DIR / name
        if not path.exists():
            path.write_bytes(data)
            written.append(name)
    return written


def same_batch(a: ResultBatch, b: ResultBatch) -> bool:
    """Equal identity, dictionaries and columns (arrays make ``==`` unsuitable)."""
    return (
        (a.run_id, a.plan_id, a.engine_id, a.seq, a.ts_base_ms)
        == (b.run_id, b.plan_id, b.engine_id, b.seq, b.ts_base_ms)
        and (a.labels, a.codes, a.messages) == (b.labels, b.codes, b.messages)
        and all(np.array_equal(a.column(n), b.column(n)) for n, _ in COLUMNS)
    )
