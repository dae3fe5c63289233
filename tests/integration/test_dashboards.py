"""The Grafana dashboards: the files are what shibuya/dashboards.py makes, and every query runs —
the ClickHouse ones on the real schema (the ClickHouse engine) over a known run, returning the
known numbers; the Prometheus ones on a real Prometheus scraping a real worker."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from control.results.clickhouse import Store
from control.results.sink import METRICS_COLUMNS, RUN_STATUS_COLUMNS, STATUS_COLUMNS
from shibuya import dashboards
from streams.histogram import histogram
from tests.support.api import start_api
from tests.support.prometheus import Prometheus
from tests.support.stream import Workers
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

T0 = int(time.time()) // 60 * 60 - 3600  # the run's first second (recent: engine rows have a TTL)
SECONDS = 10
# plan, label → per second: elapsed values (ms) and how many failed (code 500)
Load = Callable[[int], tuple[list[int], int]]
LOAD: dict[tuple[str, str], Load] = {
    ("p1", "GET /items"): lambda s: ([5 + (i * 7 + s) % 40 for i in range(10 + s)], 0),
    ("p2", "POST /login"): lambda s: ([20 + i * 13 % 90 for i in range(5)], 1),
}


def test_the_files_are_what_the_generator_makes() -> None:
    for name, dashboard in dashboards.dashboards().items():
        assert (dashboards.FOLDER / name).read_text() == dashboards.render(dashboard), (
            f"{name} is stale: run `shibuya dev dashboards`")  # fmt: skip


def _rows(run: str) -> list[list[Any]]:
    rows = []
    for s in range(SECONDS):
        second = datetime.fromtimestamp(T0 + s, UTC)
        every: list[int] = []
        failed_total = 0
        for (plan, label), load in LOAD.items():
            values, failed = load(s)
            every += values
            failed_total += failed
            rows.append(_row(run, "label", plan, label, second, values, failed))
        rows.append(_row(run, "run", "", "", second, every, failed_total))
    return rows


def _row(run: str, scope: str, plan: str, label: str, second: datetime, values: list[int],
         failed: int) -> list[Any]:  # fmt: skip
    buckets, counts = histogram(np.array(values))
    codes = {"200": len(values) - failed, **({"500": failed} if failed else {})}
    messages = {"Internal Server Error": failed} if failed else {}
    return [run, scope, plan, label, second, "", len(values), failed, codes, messages,
            100 * len(values),
            10 * len(values), min(values), max(values), sum(values), 4, buckets.tolist(),
            counts.tolist(), buckets.tolist(), counts.tolist(), [], []]  # fmt: skip


def _expand(sql: str, variables: dict[str, list[str]]) -> str:
    """What Grafana and the ClickHouse plugin do to a query before sending it."""
    sql = re.sub(r"\$__timeFilter\((\w+)\)",
                 rf"\1 >= toDateTime({T0 - 60}) AND \1 <= toDateTime({T0 + 600})", sql)  # fmt: skip
    for name, values in variables.items():
        sql = sql.replace(f"${{{name}:singlequote}}", ",".join(f"'{v}'" for v in values))
        sql = sql.replace(f"${{{name}}}", values[0])
    assert "$" not in sql, sql
    return sql


def _nearest_rank(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[max(1, int(np.ceil(q * len(ordered)))) - 1])


def test_every_clickhouse_query_returns_the_known_run(clickhouse: Store, unique: str) -> None:
    run = f"run-{unique}"
    client = clickhouse.client
    client.insert("metrics_second", _rows(run), column_names=METRICS_COLUMNS)
    client.insert("run_status", [[run, "c1", "pr1", "finished", datetime.fromtimestamp(T0, UTC),
                                  datetime.fromtimestamp(T0, UTC), None, 0, 0, "", "{}"]],
                  column_names=RUN_STATUS_COLUMNS)  # fmt: skip
    run_dash = dashboards.run_dashboard()
    variables = {"run": [run], "plan": ["p1", "p2"], "label": ["GET /items", "POST /login"]}

    def query(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in client.query(_expand(sql, variables)).result_rows]

    [run_var, plan_var, label_var] = run_dash["templating"]["list"]
    assert (run,) in query(run_var["query"])
    assert query(plan_var["query"]) == [("p1",), ("p2",)]
    assert query(label_var["query"]) == [("GET /items",), ("POST /login",)]

    panels = {p["title"]: p["targets"][0]["rawSql"] for p in run_dash["panels"]}
    per_second = {s: (LOAD[("p1", "GET /items")](s), LOAD[("p2", "POST /login")](s))
                  for s in range(SECONDS)}  # fmt: skip
    rps = query(panels["Requests per second"])
    assert [(int(t.timestamp()) - T0, n) for t, n in rps] == [
        (s, len(a[0]) + len(b[0])) for s, (a, b) in per_second.items()]  # fmt: skip
    for t, *ps in query(panels["Response time percentiles"]):
        a, b = per_second[int(t.timestamp()) - T0]
        for q, p in zip((0.5, 0.9, 0.95, 0.99), ps, strict=True):
            assert p == pytest.approx(_nearest_rank(a[0] + b[0], q), rel=0.011)
    codes = query(panels["Responses by code (not 2xx)"])
    assert [(int(t.timestamp()) - T0, c, n) for t, c, n in codes] == [
        (s, "500", 1) for s in range(SECONDS)]  # fmt: skip
    assert [(e, th) for _, e, th in query(panels["Errors per second and threads"])] == [
        (1, 4)] * SECONDS  # fmt: skip
    by_label = query(panels["Requests per second by label"])
    assert len(by_label) == 2 * SECONDS
    assert sum(n for _, label, n in by_label if label == "GET /items") == sum(
        len(a[0]) for a, _ in per_second.values())  # fmt: skip
    assert len(query(panels["p95 by label"])) == 2 * SECONDS
    table = query(panels["Per plan and label (whole run in the time range)"])
    everything = {k: [v for s in range(SECONDS) for v in load(s)[0]] for k, load in LOAD.items()}
    assert [(plan, label, samples, errors) for plan, label, samples, errors, *_ in table] == [
        ("p1", "GET /items", len(everything[("p1", "GET /items")]), 0),
        ("p2", "POST /login", len(everything[("p2", "POST /login")]), SECONDS),
    ]  # fmt: skip
    for plan, label, *_, p95, _p99, max_ms in table:
        values = everything[(plan, label)]
        assert p95 == pytest.approx(_nearest_rank(values, 0.95), rel=0.011)
        assert max_ms == max(values)


def test_engine_health_queries_return_each_engines_numbers(clickhouse: Store, unique: str) -> None:
    collection = f"c-{unique}"
    rows = [[collection, "p1", f"{collection}-p1-{e}", e, "", "idle",
             datetime.fromtimestamp(T0 + s, UTC), 10 * e, 0.5 * e + s / 100, 2**20 * (e + 1), 7,
             0, None, "", e == 1 and s == 4] for e in range(2) for s in range(5)]  # fmt: skip
    clickhouse.client.insert("engine_status", rows, column_names=STATUS_COLUMNS)
    dash = dashboards.engines_dashboard()
    variables = {"collection": [collection]}
    panels = {p["title"]: p["targets"][0]["rawSql"] for p in dash["panels"]}

    def query(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in clickhouse.client.query(_expand(sql, variables)).result_rows]

    assert (collection,) in query(dash["templating"]["list"][0]["query"])
    cpu = query(panels["CPU per engine"])
    expected = [(f"{collection}-p1-{e}", round(0.5 * e + s / 100, 2))
                for e in range(2) for s in range(5)]  # fmt: skip
    assert sorted((e, round(c, 2)) for _, e, c in cpu) == sorted(expected)
    assert {m for _, _, m in query(panels["Memory per engine"])} == {2**20, 2**21}
    assert {t for _, _, t in query(panels["Threads per engine"])} == {0, 10}
    last = query(panels["Engines: last word"])
    # Engine 1's sidecar said its last word: it went away.
    assert [(e, state, published, gone) for e, state, _, _, published, _, gone in last] == [
        (f"{collection}-p1-0", "idle", 7, False),
        (f"{collection}-p1-1", "idle", 7, True),
    ]


def test_every_pipeline_query_runs_on_prometheus_scraping_a_worker_and_an_api(
    workers: Workers, tmp_path: Path
) -> None:
    worker = workers.start()
    workers.wait_settled()
    database = f"sqlite:///{tmp_path / 'meta.db'}"
    api = start_api(tmp_path / "api", database, KAFKA__BOOTSTRAP=workers.bootstrap,
                    KAFKA__TOPIC_PREFIX=workers.app_id)  # fmt: skip
    api_target = api.base.removeprefix("http://")
    prometheus = Prometheus.start(tmp_path / "prometheus",
                                  [f"127.0.0.1:{worker.metrics_port}", api_target])  # fmt: skip
    try:
        # The API answers Prometheus's own scrapes: their p99 and their status, as documented.
        def api_p99() -> list[dict[str, Any]]:
            return prometheus.query(dashboards.API_P99)

        wait_until("the API's p99 per route", lambda: any(
            s["metric"] == {"route": "/metrics"} for s in api_p99()), 60)  # fmt: skip
        [p99] = [s for s in api_p99() if s["metric"] == {"route": "/metrics"}]
        assert 0 < float(p99["value"][1]) <= 10, p99
        by_status = dashboards.PIPELINE_QUERIES["API requests per second by status"][0]
        codes = [cast(dict[str, str], s["metric"])["code"] for s in prometheus.query(by_status)]
        assert codes == ["200"]
        owned = dashboards.PIPELINE_QUERIES["Partitions owned per worker"][0]
        wait_until(
            "Prometheus to see every partition owned",
            lambda: prometheus.scalar(f"sum({owned})") == workers.partitions,
            60,
        )
        for title, (expr, _) in dashboards.PIPELINE_QUERIES.items():
            assert isinstance(prometheus.query(expr), list), title  # raises if refused
        assert prometheus.scalar(dashboards.PIPELINE_QUERIES["Runs tracked"][0]) == 0
    finally:
        prometheus.stop()
        api.stop()
