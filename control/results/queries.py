"""The read path: per-second series and run summaries from ClickHouse, and a live follow.

Everything is computed from ``metrics_second`` ``FINAL`` (duplicates removed), adding final and
late rows of the same second. Percentiles come from histograms added across rows (``sumMap``) and
read by nearest rank — never from averaged percentiles; each is within 1 % of the exact value
(the ``log2pct`` scheme, docs/histograms.md). :func:`percentile_sql` is the same expression the
dashboards use. Run statuses (state, engines, verdicts) come from ``run_status``, which the sink
fills from the stream's compacted run-status topic.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

from control.results.clickhouse import Store
from wire import RunStatus, decode_run_status

QUANTILES: Final = (0.5, 0.9, 0.95, 0.99, 0.999)
GAMMA: Final = 1.02


def percentile_sql(hist: str, q: float) -> str:
    """SQL for quantile ``q`` of a ``sumMap``-merged histogram expression ``hist``."""
    rank = f"greatest(1, ceil({q!r} * arraySum(tupleElement({hist}, 2))))"
    index = f"arrayFirstIndex(c -> c >= {rank}, arrayCumSum(tupleElement({hist}, 2)))"
    bucket = f"arrayElement(tupleElement({hist}, 1), {index})"
    return f"if({bucket} > 0, pow({GAMMA}, {bucket} - 0.5), 0)"


def _percentiles(hist: str, prefix: str = "elapsed") -> str:
    return ", ".join(f"{percentile_sql(hist, q)} AS {prefix}_p{_name(q)}" for q in QUANTILES)


def clamped(values: Any, least: float, most: float) -> dict[float, float]:
    """Quantile → value, each within the exact extremes: a bucket's representative may lie
    past them (a p99 of 354.8 beside a max of 353, 1.01 for an exact 1 ms)."""
    return {q: min(max(float(v), float(least)), float(most))
            for q, v in zip(QUANTILES, values, strict=True)}  # fmt: skip


def ranked(counts: dict[Any, Any]) -> dict[str, int]:
    """Name → count, most frequent first (then by name)."""
    return dict(sorted(((str(k), int(v)) for k, v in counts.items() if v),
                       key=lambda kv: (-kv[1], kv[0])))  # fmt: skip


def _name(q: float) -> str:
    return f"{q * 100:g}".replace(".", "_")


@dataclass(frozen=True)
class Second:
    second: int
    count: int
    failures: int
    bytes_recv: int
    bytes_sent: int
    elapsed_mean_ms: float
    threads: int
    percentiles: dict[float, float]
    """Elapsed quantile → milliseconds."""
    failure_messages: dict[str, int]


@dataclass(frozen=True)
class Summary:
    plan_id: str | None
    label: str | None
    count: int
    failures: int
    bytes_recv: int
    bytes_sent: int
    elapsed_min_ms: int
    elapsed_max_ms: int
    elapsed_mean_ms: float
    first_second: int
    last_second: int
    percentiles: dict[float, float]
    latency_percentiles: dict[float, float]
    connect_percentiles: dict[float, float]
    codes: dict[str, int]
    failure_messages: dict[str, int]
    """Most frequent first."""

    @property
    def error_rate(self) -> float:
        return self.failures / self.count if self.count else 0.0

    @property
    def rps(self) -> float:
        return self.count / (self.last_second - self.first_second + 1) if self.count else 0.0


@dataclass(frozen=True)
class Heartbeat:
    """An engine's latest status as its sidecar reported it."""

    engine_id: str
    plan_id: str
    index: int
    state: str
    run_id: str | None
    ts_ms: int
    threads: int
    cpu_cores: float | None
    memory_bytes: int | None
    detail: str
    exiting: bool = False
    """The sidecar's last heartbeat: it went away."""


@dataclass(frozen=True)
class RunReport:
    run_id: str
    total: Summary | None
    labels: list[Summary]
    late_samples: int


_SUMMARY_COLUMNS = f"""
    samples, failed, received_bytes, sent_bytes, fastest_ms, slowest_ms, elapsed_total_ms,
    toUnixTimestamp(first_second), toUnixTimestamp(last_second),
    {_percentiles("elapsed_hist")},
    {_percentiles("latency_hist", "latency")},
    {_percentiles("connect_hist", "connect")},
    codes, failure_messages, late_samples
"""


class Results:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def series(
        self,
        run_id: str,
        *,
        plan_id: str | None = None,
        label: str | None = None,
        since_s: int | None = None,
    ) -> list[Second]:
        """Per-second rows of the run (or of one label), oldest first, from ``since_s`` on."""
        where, params = _where(run_id, plan_id, label)
        if since_s is not None:
            where += " AND second >= toDateTime({since:UInt32}, 'UTC')"
            params["since"] = since_s
        rows = await self.store.query(
            f"""
            SELECT toUnixTimestamp(second) AS s, sum(count), sum(failures), sum(bytes_recv),
                   sum(bytes_sent), sum(elapsed_sum_ms), max(threads_max),
                   min(elapsed_min_ms), max(elapsed_max_ms), sumMap(failure_messages),
                   {_percentiles("sumMap(elapsed_buckets, elapsed_counts)")}
            FROM metrics_second FINAL
            WHERE {where}
            GROUP BY s ORDER BY s
            """,  # noqa: S608 (built from constants; values are bound parameters)
            params,
        )
        return [
            Second(
                second=int(r[0]),
                count=int(r[1]),
                failures=int(r[2]),
                bytes_recv=int(r[3]),
                bytes_sent=int(r[4]),
                elapsed_mean_ms=r[5] / r[1] if r[1] else 0.0,
                threads=int(r[6]),
                percentiles=clamped(r[10:], r[7], r[8]),
                failure_messages=ranked(r[9]),
            )
            for r in rows
        ]

    async def report(self, run_id: str) -> RunReport:
        """The run's totals and one summary per label, with whole-run percentiles."""
        rows = await self.store.query(
            f"""SELECT scope, plan_id, label, {_SUMMARY_COLUMNS} FROM run_summary
            WHERE run_id = {{run:String}} AND samples > 0
            ORDER BY scope, plan_id, label""",  # noqa: S608 (constants; values are bound)
            {"run": run_id},
        )
        total = [r for r in rows if r[0] == "run"]
        return RunReport(
            run_id=run_id,
            total=_summary(None, None, total[0][3:]) if total else None,
            labels=[_summary(r[1], r[2], r[3:]) for r in rows if r[0] == "label"],
            late_samples=int(total[0][-1]) if total else 0,
        )

    async def engine_usage(self, run_id: str) -> list[dict[str, Any]]:
        """Each engine's CPU and memory over the run as its heartbeats reported them (at most
        2,000 points an engine): ``engine_id``, ``ts`` (Unix seconds), ``cpu_cores``,
        ``memory_bytes``."""
        rows = await self.store.query(
            """SELECT engine_id, toUnixTimestamp64Milli(ts), cpu_cores, memory_bytes
            FROM engine_status
            WHERE run_id = {run:String} AND (cpu_cores IS NOT NULL OR memory_bytes IS NOT NULL)
            ORDER BY engine_id, ts LIMIT 2000 BY engine_id""",
            {"run": run_id},
        )
        out: dict[str, dict[str, Any]] = {}
        for engine, ts_ms, cpu, memory in rows:
            e = out.setdefault(engine, {"engine_id": engine, "ts": [], "cpu_cores": [],
                                        "memory_bytes": []})  # fmt: skip
            e["ts"].append(int(ts_ms) / 1000)
            e["cpu_cores"].append(cpu)
            e["memory_bytes"].append(memory)
        return list(out.values())

    async def run_status(self, run_id: str) -> RunStatus | None:
        """The latest status of a run as its owner in the stream published it."""
        rows = await self.store.query(
            "SELECT argMax(status, updated) FROM run_status WHERE run_id = {run:String} "
            "GROUP BY run_id",
            {"run": run_id},
        )
        return decode_run_status(rows[0][0].encode()) if rows else None

    async def engines(self, collection_id: str, since_ms: int) -> list[Heartbeat]:
        """The latest heartbeat of each of the collection's engines heard from since then."""
        rows = await self.store.query(
            """SELECT engine_id, argMax(plan_id, ts), argMax(engine_index, ts),
                      argMax(state, ts), argMax(run_id, ts), toUnixTimestamp64Milli(max(ts)),
                      argMax(threads, ts), argMax(cpu_cores, ts), argMax(memory_bytes, ts),
                      argMax(detail, ts), argMax(exiting, ts)
            FROM engine_status
            WHERE collection_id = {collection:String}
              AND ts >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')
            GROUP BY engine_id ORDER BY engine_id""",
            {"collection": collection_id, "since": since_ms},
        )
        return [
            Heartbeat(
                engine_id=r[0],
                plan_id=r[1],
                index=int(r[2]),
                state=r[3],
                run_id=r[4] or None,
                ts_ms=int(r[5]),
                threads=int(r[6]),
                cpu_cores=r[7],
                memory_bytes=r[8],
                detail=r[9],
                exiting=bool(r[10]),
            )
            for r in rows
        ]

    async def follow(
        self, run_id: str, *, since_s: int = 0, poll_s: float = 0.5
    ) -> AsyncIterator[Second]:
        """Yield the run's per-second rows as they land, each second once, oldest first.

        Late samples of a second already yielded are in :meth:`series` and :meth:`report`.
        """
        next_s = since_s
        while True:
            rows = await self.series(run_id, since_s=next_s)
            for row in rows:
                yield row
            if rows:
                next_s = rows[-1].second + 1
            await asyncio.sleep(poll_s)


def _where(run_id: str, plan_id: str | None, label: str | None) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {"run": run_id}
    if label is None and plan_id is None:
        return "run_id = {run:String} AND scope = 'run'", params
    where = "run_id = {run:String} AND scope = 'label'"
    if plan_id is not None:
        where += " AND plan_id = {plan:String}"
        params["plan"] = plan_id
    if label is not None:
        where += " AND label = {label:String}"
        params["label"] = label
    return where, params


def _summary(plan_id: str | None, label: str | None, r: tuple[Any, ...]) -> Summary:
    n = len(QUANTILES)
    count = int(r[0])
    return Summary(
        plan_id=plan_id,
        label=label,
        count=count,
        failures=int(r[1]),
        bytes_recv=int(r[2]),
        bytes_sent=int(r[3]),
        elapsed_min_ms=int(r[4]),
        elapsed_max_ms=int(r[5]),
        elapsed_mean_ms=r[6] / count if count else 0.0,
        first_second=int(r[7]),
        last_second=int(r[8]),
        percentiles=clamped(r[9 : 9 + n], r[4], r[5]),
        latency_percentiles=clamped(r[9 + n : 9 + 2 * n], 0, r[5]),  # never past the elapsed
        connect_percentiles=clamped(r[9 + 2 * n : 9 + 3 * n], 0, r[5]),
        codes={str(k): int(v) for k, v in r[9 + 3 * n].items()},
        failure_messages=ranked(r[10 + 3 * n]),
    )
