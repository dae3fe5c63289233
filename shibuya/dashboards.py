"""Grafana dashboards, generated: a run (ClickHouse), engine health (ClickHouse) and pipeline
health (Prometheus). ``shibuya dev dashboards`` writes them to ``deploy/grafana/dashboards``;
a test keeps the files equal to what this module makes and runs every query.

Percentiles come from the stored histograms with the same SQL the API's report uses
(:func:`control.results.queries.percentile_sql`), so a dashboard and the report agree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from control.results.queries import percentile_sql

CLICKHOUSE = {"type": "grafana-clickhouse-datasource", "uid": "clickhouse"}
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
FOLDER = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards"

_ELAPSED = "sumMap(elapsed_buckets, elapsed_counts)"
_RUN = "run_id = '${run}'"
_PLANS_LABELS = "plan_id IN (${plan:singlequote}) AND label IN (${label:singlequote})"


def _percentiles(*quantiles: float) -> str:
    return ", ".join(f"round({percentile_sql(_ELAPSED, q)}, 1) AS p{q * 100:g}" for q in quantiles)


def _sql(ref: str, sql: str, fmt: str = "time_series") -> dict[str, Any]:
    # The ClickHouse plugin's formats: 0 time series, 1 table.
    return {"refId": ref, "datasource": CLICKHOUSE, "editorType": "sql",
            "format": 0 if fmt == "time_series" else 1,
            "queryType": "timeseries" if fmt == "time_series" else "table",
            "rawSql": " ".join(sql.split())}  # fmt: skip


def _promql(ref: str, expr: str, legend: str) -> dict[str, Any]:
    return {"refId": ref, "datasource": PROMETHEUS, "expr": expr, "legendFormat": legend}


def _panel(pid: int, title: str, targets: list[dict[str, Any]], *, unit: str = "short",
           kind: str = "timeseries", x: int = 0, y: int = 0, w: int = 12, h: int = 8,
           description: str = "") -> dict[str, Any]:  # fmt: skip
    return {"id": pid, "type": kind, "title": title, "description": description,
            "datasource": targets[0]["datasource"], "targets": targets,
            "gridPos": {"x": x, "y": y, "w": w, "h": h},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {}}  # fmt: skip


def _variable(name: str, sql: str, *, multi: bool) -> dict[str, Any]:
    return {"name": name, "label": name, "type": "query", "datasource": CLICKHOUSE,
            "query": " ".join(sql.split()), "refresh": 2, "multi": multi,
            "includeAll": multi, "current": {}, "sort": 0}  # fmt: skip


def _dashboard(uid: str, title: str, panels: list[dict[str, Any]],
               variables: list[dict[str, Any]], refresh: str = "5s") -> dict[str, Any]:  # fmt: skip
    return {"uid": uid, "title": title, "tags": ["shibuya"], "schemaVersion": 39, "version": 1,
            "editable": True, "refresh": refresh, "time": {"from": "now-1h", "to": "now"},
            "timezone": "utc", "templating": {"list": variables}, "panels": panels,
            "annotations": {"list": []}}  # fmt: skip


def run_dashboard() -> dict[str, Any]:
    """One run: rate, percentiles, errors by code, threads; per plan and label."""
    run_scope = (
        f"FROM metrics_second FINAL WHERE {_RUN} AND scope = 'run' AND $__timeFilter(second)"
    )
    label_scope = (f"FROM metrics_second FINAL WHERE {_RUN} AND scope = 'label' "
                   f"AND {_PLANS_LABELS} AND $__timeFilter(second)")  # fmt: skip
    panels = [
        _panel(1, "Requests per second", [_sql("A", f"""
            SELECT second AS time, sum(count) AS rps {run_scope} GROUP BY time ORDER BY time""")],
            unit="reqps", x=0, y=0),
        _panel(2, "Response time percentiles", [_sql("A", f"""
            SELECT second AS time, {_percentiles(0.5, 0.9, 0.95, 0.99)} {run_scope}
            GROUP BY time ORDER BY time""")], unit="ms", x=12, y=0,
            description="From the merged per-second histograms (±1 %)"),
        _panel(3, "Responses by code (not 2xx)", [_sql("A", f"""
            SELECT second AS time, code, sum(n) AS responses
            FROM metrics_second FINAL ARRAY JOIN mapKeys(codes) AS code, mapValues(codes) AS n
            WHERE {_RUN} AND scope = 'run' AND NOT startsWith(code, '2')
            AND $__timeFilter(second) GROUP BY time, code ORDER BY time, code""")],
            x=0, y=8),
        _panel(4, "Errors per second and threads", [_sql("A", f"""
            SELECT second AS time, sum(failures) AS errors, max(threads_max) AS threads
            {run_scope} GROUP BY time ORDER BY time""")], x=12, y=8),
        _panel(5, "Requests per second by label", [_sql("A", f"""
            SELECT second AS time, label, sum(count) AS rps {label_scope}
            GROUP BY time, label ORDER BY time, label""")], unit="reqps", x=0, y=16),
        _panel(6, "p95 by label", [_sql("A", f"""
            SELECT second AS time, label, {_percentiles(0.95)} {label_scope}
            GROUP BY time, label ORDER BY time, label""")], unit="ms", x=12, y=16),
        _panel(7, "Per plan and label (whole run in the time range)", [_sql("A", f"""
            SELECT plan_id AS plan, label, sum(count) AS samples, sum(failures) AS errors,
            round(sum(failures) / greatest(sum(count), 1) * 100, 2) AS error_pct,
            {_percentiles(0.5, 0.9, 0.95, 0.99)}, max(elapsed_max_ms) AS max_ms {label_scope}
            GROUP BY plan, label ORDER BY plan, label""", fmt="table")],
            kind="table", x=0, y=24, w=24, h=8),
    ]  # fmt: skip
    variables = [
        _variable("run", "SELECT run_id FROM run_status FINAL ORDER BY started DESC LIMIT 200",
                  multi=False),
        _variable("plan", f"SELECT DISTINCT plan_id FROM metrics_second WHERE {_RUN} "
                  "AND scope = 'label' ORDER BY plan_id", multi=True),
        _variable("label", f"SELECT DISTINCT label FROM metrics_second WHERE {_RUN} "
                  "AND scope = 'label' ORDER BY label", multi=True),
    ]  # fmt: skip
    return _dashboard("shibuya-run", "Shibuya — run", panels, variables)


def engines_dashboard() -> dict[str, Any]:
    """CPU, memory, threads and state of each engine of the chosen collections."""
    where = "collection_id IN (${collection:singlequote}) AND $__timeFilter(ts)"
    panels = [
        _panel(1, "CPU per engine", [_sql("A", f"""
            SELECT ts AS time, engine_id, cpu_cores FROM engine_status
            WHERE {where} AND cpu_cores IS NOT NULL ORDER BY time""")], unit="short", x=0, y=0,
            description="Cores in use (1 = one core busy)"),
        _panel(2, "Memory per engine", [_sql("A", f"""
            SELECT ts AS time, engine_id, memory_bytes FROM engine_status
            WHERE {where} AND memory_bytes IS NOT NULL ORDER BY time""")], unit="bytes", x=12,
            y=0),
        _panel(3, "Threads per engine", [_sql("A", f"""
            SELECT ts AS time, engine_id, threads FROM engine_status WHERE {where}
            ORDER BY time""")], x=0, y=8),
        _panel(4, "Engines: last word", [_sql("A", f"""
            SELECT engine_id, argMax(state, ts) AS state, argMax(run_id, ts) AS run,
            max(ts) AS heard_at, argMax(samples_published, ts) AS samples_published,
            argMax(malformed_lines, ts) AS malformed_lines, argMax(exiting, ts) AS went_away
            FROM engine_status WHERE {where}
            GROUP BY engine_id ORDER BY engine_id""", fmt="table")], kind="table", x=12, y=8),
    ]  # fmt: skip
    variables = [_variable("collection", "SELECT DISTINCT collection_id FROM engine_status "
                           "ORDER BY collection_id", multi=True)]  # fmt: skip
    return _dashboard("shibuya-engines", "Shibuya — engine health", panels, variables)


#: The API's answer time per route, 99th percentile (docs/api.md, Metrics).
API_P99 = ("histogram_quantile(0.99, sum by (route, le) "
           "(rate(shibuya_api_request_duration_seconds_bucket[5m])))")  # fmt: skip

PIPELINE_QUERIES = {
    "Consumer lag by topic": ("sum by (topic) (shibuya_consumer_lag)", "{{topic}}"),
    "Samples published per second (sidecars)": (
        "sum(rate(shibuya_sidecar_samples_published_total[1m]))", "published"),
    "Samples aggregated per second": ("sum(rate(shibuya_ingest_samples_total[1m]))", "aggregated"),
    "Batches by outcome": (
        "sum by (outcome) (rate(shibuya_ingest_batches_total[1m]))", "{{outcome}}"),
    "Late samples per second": ("sum(rate(shibuya_late_samples_total[1m]))", "late"),
    "ClickHouse rows stored per second": ("sum(rate(shibuya_sink_rows_total[1m]))", "rows"),
    "Partitions owned per worker": ("sum by (instance) (shibuya_owned_partitions)", "{{instance}}"),
    "Rebalances (5 min)": ("sum(increase(shibuya_rebalances_total[5m]))", "rebalances"),
    "Sidecar backlog": ("sum by (instance) (shibuya_sidecar_backlog_bytes)", "{{instance}}"),
    "Runs tracked": ("sum(shibuya_runs_tracked)", "runs"),
    "API requests per second by status": (
        "sum by (code) (rate(shibuya_api_requests_total[1m]))", "{{code}}"),
    "API p99 by route": (API_P99, "{{route}}"),
}  # fmt: skip
"""Title → (PromQL, legend) of the pipeline dashboard's panels."""


def pipeline_dashboard() -> dict[str, Any]:
    panels = [
        _panel(i + 1, title, [_promql("A", expr, legend)],
               unit="bytes" if "backlog" in title else "s" if "p99" in title else "short",
               x=(i % 2) * 12, y=(i // 2) * 8)
        for i, (title, (expr, legend)) in enumerate(PIPELINE_QUERIES.items())
    ]  # fmt: skip
    return _dashboard("shibuya-pipeline", "Shibuya — pipeline health", panels, [])


def dashboards() -> dict[str, dict[str, Any]]:
    """File name → dashboard."""
    return {"run.json": run_dashboard(), "engines.json": engines_dashboard(),
            "pipeline.json": pipeline_dashboard()}  # fmt: skip


def render(dashboard: dict[str, Any]) -> str:
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def write(folder: Path = FOLDER) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, dashboard in dashboards().items():
        (folder / name).write_text(render(dashboard))
        out.append(folder / name)
    return out
