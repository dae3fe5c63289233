"""Latency of the API's status and results endpoints under an open-loop load, against the
server's floor (``/healthz``) measured in the same run.

A real API (its ClickHouse sink, SQLite or ``--database-url``), a real worker and broker; one run
of generated results (``--labels`` labels × ``--seconds-of-data`` seconds from 4 engines) fed
through the stream, so the results endpoints read what a real run leaves. Each endpoint then
gets ``--rate`` requests per second for ``--duration`` seconds, sent on schedule whatever the
answers do (latency counts from when a request was due, so a slow server is not hidden by
fewer requests). The load generator runs on the same machine and takes CPU from the server;
the table shows both (a core is 100 %) and each answer's size, and the p99 of the time spent in
the API alone (a bound, from its own ``shibuya_api_request_duration_seconds`` histogram): a p99
far above it was spent waiting in the load generator or the kernel, not in the server.

    .venv/bin/python -m bench.api --bootstrap 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from tests.support.api import FAST, ApiServer, make_collection, start_api
from tests.support.lifecycle import Harness
from tests.support.stream import Workers, generate, send
from tests.support.waiting import wait_until
from wire import EngineState, Topic


async def load(
    base: str, token: str, path: str, rate: float, seconds: float, etag: str | None = None
) -> dict[str, float]:
    """``rate`` GETs of ``path`` per second for ``seconds`` (with ``etag``: revalidations, which
    must answer 304); latency percentiles in ms."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    headers = {"Authorization": f"Bearer {token}", **({"If-None-Match": etag} if etag else {})}
    async with httpx.AsyncClient(base_url=base, headers=headers,
                                 limits=limits, timeout=30) as client:  # fmt: skip

        async def one(due: float) -> None:
            nonlocal errors
            try:
                r = await client.get(path)
                ok = r.status_code == (304 if etag else 200)
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - due) * 1000)
            errors += not ok

        start = time.perf_counter() + 0.1
        tasks = []
        for i in range(int(rate * seconds)):
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    lat = np.array(latencies)
    p50, p99 = (float(np.percentile(lat, q)) for q in (50, 99))
    return {"n": len(lat), "rate": len(lat) / elapsed, "p50": p50, "p99": p99,
            "max": float(lat.max()), "errors": errors}  # fmt: skip


def cpu_s(pid: int) -> float:
    """CPU seconds the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def answered(api: ApiServer) -> dict[float, float]:
    """The API's own count of requests answered within each bucket (``le``, seconds), over all
    routes but ``/metrics``: cumulative, as Prometheus exposes them."""
    with httpx.Client(base_url=api.base) as c:
        text = c.get("/metrics").text
    out: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "shibuya_api_request_duration_seconds":
            for s in family.samples:
                if s.name.endswith("_bucket") and s.labels["route"] != "/metrics":
                    le = float(s.labels["le"])
                    out[le] = out.get(le, 0.0) + s.value
    return out


def server_p99_ms(before: dict[float, float], after: dict[float, float]) -> float:
    """The bound of the API's own histogram under which 99 % of the requests between two
    scrapes were answered (ms): time in the server alone, not in the load generator's queue."""
    delta = {le: after[le] - before.get(le, 0.0) for le in sorted(after)}
    total = delta.get(float("inf"), 0.0)
    return next((le * 1000 for le, n in delta.items() if n >= 0.99 * total), float("nan"))


def kilobytes(api: ApiServer, path: str) -> float:
    with api.client("alice") as c:
        return len(c.get(path).content) / 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--database-url", default="", help="default: SQLite in a temporary folder")
    ap.add_argument("--rate", type=float, default=200, help="requests per second")
    ap.add_argument("--duration", type=float, default=5, help="seconds per endpoint and round")
    ap.add_argument("--rounds", type=int, default=3, help="the table gives medians of rounds")
    ap.add_argument("--labels", type=int, default=20)
    ap.add_argument("--seconds-of-data", type=int, default=120)
    args = ap.parse_args()
    prefix = f"b{uuid.uuid4().hex[:10]}"
    tmp = Path(tempfile.mkdtemp(prefix="shibuya-bench-api-"))
    url = args.database_url or f"sqlite:///{tmp / 'meta.db'}"
    console = Console()
    api = start_api(tmp / "api", url, KAFKA__BOOTSTRAP=args.bootstrap,
                    KAFKA__TOPIC_PREFIX=prefix, SINK__ENABLED="true",
                    SINK__GROUP_ID=f"{prefix}-sink", RUNS_GROUP_ID=f"{prefix}-runs",
                    COMMANDS_GROUP_ID=f"{prefix}-commands")  # fmt: skip
    workers = Workers(args.bootstrap, prefix, tmp)
    harness = Harness(args.bootstrap, prefix)
    closed = False
    try:
        workers.start(**FAST)
        workers.wait_settled()
        collection, _ = make_collection(api, duration_s=3)
        with api.client("alice") as c:
            run_id = c.post(f"/api/collections/{collection}/runs").json()["id"]
        start_s = int(time.time()) - args.seconds_of_data
        run = generate(run_id, engines=4, seconds=args.seconds_of_data, per_second=500,
                       labels=args.labels, start_s=start_s)  # fmt: skip
        harness.add_engines(run_id, str(collection), 4, EngineState.RUNNING)
        harness.set_engines(f"{collection}-", published=run.expected.total // 4)
        console.print(f"feeding {run.expected.total:,} samples of run {run_id} through the stream")
        send(args.bootstrap, harness.topics[Topic.RESULTS], run.messages)
        total = run.expected.total

        def stored() -> bool:
            with api.client("alice") as c:
                r = c.get(f"/api/runs/{run_id}/report").json()
            return r["run"]["outcome"] is not None and (r["total"] or {}).get("samples") == total

        wait_until("the run in ClickHouse", stored, 300, workers.logs)
        harness.close()  # the data is in; the machine is the API's (and the load's) now
        closed = True
        workers.stop()
        report = f"/api/runs/{run_id}/report"
        with api.client("alice") as c:
            report_etag = c.get(report).headers["etag"]
        endpoints = [
            ("/healthz (baseline)", "/healthz", None),
            ("run status", f"/api/runs/{run_id}", None),
            ("collection status", f"/api/collections/{collection}/status", None),
            ("series (whole run)", f"/api/runs/{run_id}/series", None),
            ("report (per label)", report, None),
            ("report, revalidated (304)", report, report_etag),
        ]
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in endpoints}
        idle: list[float] = []  # the API's own CPU with no request (its Kafka followers)
        for i in range(args.rounds):  # interleaved: a slow moment of the machine hits all
            console.print(f"round {i + 1}: no requests for {args.duration / 3:g} s")
            server0, t0 = cpu_s(api.proc.pid), time.monotonic()
            time.sleep(args.duration / 3)
            idle.append((cpu_s(api.proc.pid) - server0) / (time.monotonic() - t0))
            for name, path, etag in endpoints:
                console.print(f"round {i + 1}: {name}: {args.rate:g}/s for {args.duration:g} s")
                hist0 = answered(api)
                server0, load0, t0 = cpu_s(api.proc.pid), time.process_time(), time.monotonic()
                r = asyncio.run(load(api.base, api.tokens["alice"], path, args.rate,
                                     args.duration, etag))  # fmt: skip
                wall = time.monotonic() - t0
                r["server_p99"] = server_p99_ms(hist0, answered(api))
                r["server_cpu"] = (cpu_s(api.proc.pid) - server0) / wall
                r["load_cpu"] = (time.process_time() - load0) / wall
                r["kb"] = 0.0 if etag else kilobytes(api, path)
                rounds[name].append(r)
        rows = [(name, {k: float(np.median([r[k] for r in rs])) for k in rs[0]})
                for name, rs in rounds.items()]  # fmt: skip
    finally:
        if not closed:
            harness.close()
        workers.stop()
        api.stop()
    base = rows[0][1]
    database = "PostgreSQL" if args.database_url else "SQLite"
    title = (f"API latency at {args.rate:g} requests/s, median of {args.rounds} rounds "
             f"({args.labels} labels, {args.seconds_of_data} s of data; {database})")  # fmt: skip
    table = Table(title=title)
    for col in ("endpoint", "KB", "requests", "achieved/s", "errors", "p50 ms", "p99 ms",
                "max ms", "p50 / baseline", "p99 / baseline", "p99 in the API", "API CPU",
                "load CPU"):  # fmt: skip
        table.add_column(col, justify="left" if col == "endpoint" else "right")
    for name, r in rows:
        table.add_row(name, f"{r['kb']:.1f}", f"{r['n']:.0f}", f"{r['rate']:.0f}",
                      f"{r['errors']:.0f}", f"{r['p50']:.1f}", f"{r['p99']:.1f}",
                      f"{r['max']:.0f}", f"{r['p50'] / base['p50']:.1f}",
                      f"{r['p99'] / base['p99']:.1f}", f"≤ {r['server_p99']:g} ms",
                      f"{r['server_cpu']:.0%}",
                      f"{r['load_cpu']:.0%}")  # fmt: skip
    console.print(table)
    console.print(f"API CPU with no requests: {float(np.median(idle)):.1%}")


if __name__ == "__main__":
    main()
