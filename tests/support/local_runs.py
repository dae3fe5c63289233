"""A real run end to end on this machine: a worker, an API whose local scheduler deploys real
JMeter engines (sandboxed where bubblewrap is), the HTTP target — on the broker a test names, as
the principals it names. What happens during the run is the test's (``during``)."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from control.schedulers.processes import alive, wait_for
from shibuya.dev import gatling, jmeter, locust, target
from shibuya.dev.main_job import samples_in
from shibuya.dev.worker_proc import WorkerProcess
from tests.support.api import FAST, JMX, ApiServer, make_collection, start_api
from tests.support.waiting import wait_until


@dataclass
class Bus:
    """The broker and the deployables' Kafka settings (``KAFKA__…``, without their prefix)."""

    bootstrap: str
    worker: dict[str, str] = field(default_factory=dict)
    api: dict[str, str] = field(default_factory=dict)
    """The API's, the engines' principal among them (``KAFKA__SIDECAR_USERNAME``, ``…PASSWORD``)."""


@dataclass
class Ran:
    run: dict[str, Any]
    written: int
    """Samples the engines' JMeter wrote, counted in their results files."""
    labels: list[set[str]] = field(default_factory=list)
    """The labels in each engine's results file."""
    stored: int = 0
    """Samples in ClickHouse (the run's report), once it holds as many as were written."""
    threads: list[int] = field(default_factory=list)
    """The most threads each engine's group had running (``grpThreads`` in its results)."""
    leaks: list[str] = field(default_factory=list)
    """Where a secret's value was found: files (logs, results, engine folders) and answers."""
    failed: dict[str, Counter[str]] = field(default_factory=dict)
    """Per label, failed samples per failure message in the results files (the assertion's,
    else the response's — as the sidecar reads them)."""
    report: dict[str, Any] = field(default_factory=dict)
    """The run's report (``GET /api/runs/{run}/report``) once ClickHouse holds it all."""
    series: list[dict[str, Any]] = field(default_factory=list)
    html: str = ""
    """``GET /api/runs/{run}/report.html``."""


@dataclass(frozen=True)
class Load:
    """What the collection runs: its engines, JMX and properties (the collection's, its plan's,
    the run's)."""

    engines: int = 2
    jmx: bytes = JMX
    properties: dict[str, str] = field(default_factory=dict)
    plan_properties: dict[str, str] = field(default_factory=dict)
    run_properties: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    plan_env: dict[str, str] = field(default_factory=dict)
    run_env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    jars: dict[str, bytes] = field(default_factory=dict)
    """The plan's own jars (the API then takes them: FILES__PLAN_JARS)."""
    thresholds: tuple[str, ...] = ("error_rate > 50% over 3s",)


def run_on_local_engines(
    tmp_path: Path, bus: Bus, duration_s: int,
    during: Callable[[float], None] = lambda started: None, test: Load = Load(),
) -> Ran:  # fmt: skip
    """Deploy a collection of ``test.engines`` engines, run it for ``duration_s``, call
    ``during`` with when it started running (monotonic), wait for its end; the engines are
    purged whatever happens."""
    with local_stack(tmp_path, bus, plan_jars=bool(test.jars)) as (api, worker):
        return _run(api, worker, duration_s, during, test)


@contextmanager
def local_stack(
    tmp_path: Path, bus: Bus, plan_jars: bool = False
) -> Iterator[tuple[ApiServer, WorkerProcess]]:
    """A worker, and an API whose local scheduler deploys real JMeter engines against the HTTP
    target, with its ClickHouse sink; stopped at the end."""
    worker = WorkerProcess.start(
        bootstrap=bus.bootstrap, app_id="shibuya-streams", data_dir=tmp_path / "worker",
        log=tmp_path / "worker.log",
        # Real JMeter engines here: lost after 15 s of silence, not the suite's 5 s — two or three
        # JVMs starting on this machine's two busy cores have held every sidecar's heartbeats up
        # for 5.5 s (twice in CI: the run failed, "every engine lost", before it began).
        # And they end on their own, each counting the run's duration from its own start: a JVM
        # that took 6 s to boot had been stopped a second after a 5-s run, before its first
        # sample, under the suite's 1-s grace.
        settings={**FAST, "ENGINE_LOST_S": "15", "STOP_GRACE_S": "15", **bus.worker},
    )  # fmt: skip
    try:
        with target.serve() as port:
            sidecars = {
                "SHIBUYA_SIDECAR_JMETER__HOME": str(jmeter.install()),
                "SHIBUYA_SIDECAR_JMETER__HEAP": "256m",
                "SHIBUYA_SIDECAR_JMETER__PROPERTIES": json.dumps({"target.port": str(port)}),
                "SHIBUYA_SIDECAR_HEARTBEAT_INTERVAL_S": "1",
                "SHIBUYA_SIDECAR_LOCUST__PYTHON": str(locust.install() / "bin" / "python"),
                "SHIBUYA_SIDECAR_GATLING__HOME": str(gatling.install()),
                "LOCUST_HOST": f"http://127.0.0.1:{port}",  # Locust plans' target
                "TARGET_URL": f"http://127.0.0.1:{port}",  # Gatling plans' (the test's own)
            }
            settings = {"KAFKA__BOOTSTRAP": bus.bootstrap, "SCHEDULER__KIND": "local",
                        "SCHEDULER__SIDECAR_ENV": json.dumps(sidecars), "SINK__ENABLED": "true",
                        "FILES__PLAN_JARS": str(plan_jars).lower(), **bus.api}  # fmt: skip
            api = start_api(tmp_path / "api", f"sqlite:///{tmp_path / 'meta.db'}", None,
                            **settings)  # fmt: skip
            try:
                yield api, worker
            finally:
                api.stop()
                end_engines(tmp_path / "api" / "engines")
    finally:
        worker.stop()


def end_engines(folder: Path) -> None:
    """SIGKILL the sessions of every engine still running under ``folder`` (a test that failed
    before purging leaves them; alive, they would take later tests' commands: same engine ids,
    same consumer groups)."""
    for record in folder.glob("*/*/engine.json"):
        pid = json.loads(record.read_text())["pid"]
        if alive(pid):
            with contextlib.suppress(OSError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)


def _run(
    api: ApiServer, worker: WorkerProcess, duration_s: int, during: Callable[[float], None],
    test: Load,
) -> Ran:  # fmt: skip
    collection, _ = make_collection(api, duration_s, test.engines, test.jmx, test.properties,
                                    test.plan_properties, test.jars, test.thresholds)  # fmt: skip
    with api.client("alice") as c:
        if test.env or test.plan_env:
            _set_env(c, collection, test.env, test.plan_env)
        try:
            assert c.post(f"/api/collections/{collection}/deploy").status_code == 201

            def ready() -> bool:
                plans = c.get(f"/api/collections/{collection}/status").json()["plans"]
                return all(p["ready"] == p["engines"] for p in plans)

            wait_until("the engines to be ready", ready, 120, lambda: api.log.read_text()[-3000:])
            for name, value in test.secrets.items():
                r = c.put(f"/api/collections/{collection}/secrets/{name}", json={"value": value})
                assert r.status_code == 200, r.text
            body = {"properties": test.run_properties, "env": test.run_env}
            run_id = c.post(f"/api/collections/{collection}/runs", json=body).json()["id"]
            started = time.monotonic()

            def running() -> bool:
                return bool(c.get(f"/api/runs/{run_id}").json()["state"] == "running")

            wait_until("the run to be running", running, 60, worker.log_tail)
            during(started)

            def ended() -> bool:
                return c.get(f"/api/runs/{run_id}").json()["outcome"] is not None

            wait_until("the run to end", ended, 300, worker.log_tail)
            run: dict[str, Any] = c.get(f"/api/runs/{run_id}").json()
            jtl = [f / "results.jtl" for f in engine_runs(api, collection, run_id)]
            written = sum(samples_in(f) for f in jtl)
            ran = Ran(run, written, [labels_in(f) for f in jtl], _stored(c, run_id, written),
                      [threads_in(f) for f in jtl])  # fmt: skip
            ran.leaks = leaks(c, collection, run_id, [api.log.parent, worker.log],
                              list(test.secrets.values()))  # fmt: skip
            ran.failed = failures_in(jtl)
            ran.report = c.get(f"/api/runs/{run_id}/report").json()
            ran.series = c.get(f"/api/runs/{run_id}/series").json()
            page = c.get(f"/api/runs/{run_id}/report.html")
            assert page.status_code == 200, page.text
            ran.html = page.text
            return ran
        finally:  # the engines go with the test (they would retry a dead broker for ever)
            c.post(f"/api/collections/{collection}/purge", json={}, timeout=300)


def labels_in(jtl: Path) -> set[str]:
    """The labels of a JMeter CSV results file (with its header)."""
    with jtl.open(newline="") as f:
        return {row["label"] for row in csv.DictReader(f)}


def _stored(c: httpx.Client, run_id: str, written: int) -> int:
    """The run's samples in ClickHouse, once it holds ``written`` (its last seconds' windows
    close a few seconds after the run) or after a minute."""
    total = {"samples": 0}

    def complete() -> bool:
        total.update(c.get(f"/api/runs/{run_id}/report").json()["total"] or {"samples": 0})
        return total["samples"] >= written

    wait_for(complete, 60, interval_s=0.5)
    return total["samples"]


def failures_in(jtls: list[Path]) -> dict[str, Counter[str]]:
    """Per label, failed samples per message in JMeter CSV results files."""
    out: dict[str, Counter[str]] = {}
    for jtl in jtls:
        with jtl.open(newline="") as f:
            for row in csv.DictReader(f):
                if row["success"] == "false":
                    message = row.get("failureMessage") or row.get("responseMessage") or ""
                    out.setdefault(row["label"], Counter())[message or "(no message)"] += 1
    return out


def threads_in(jtl: Path) -> int:
    """The most threads of a group that ran at once in a JMeter CSV results file."""
    with jtl.open(newline="") as f:
        return max((int(row["grpThreads"]) for row in csv.DictReader(f)), default=0)


def leaks(c: httpx.Client, collection: int, run_id: str, places: list[Path],
          secrets: list[str]) -> list[str]:  # fmt: skip
    """Every file under ``places`` and every answer about the run that holds one of ``secrets``
    (as it is, or JSON-escaped)."""
    if not secrets:
        return []
    needles = {s.encode() for s in secrets} | {json.dumps(s)[1:-1].encode() for s in secrets}
    found = []
    files = [p for place in places for p in ([place] if place.is_file() else place.rglob("*"))]
    for path in files:
        if path.name == "run.properties":  # what JMeter reads them from: the engine's own, 0600
            assert path.stat().st_mode & 0o077 == 0, path
            continue
        if path.is_file() and any(n in path.read_bytes() for n in needles):
            found.append(str(path))
    for url in (f"/api/collections/{collection}", f"/api/collections/{collection}/secrets",
                f"/api/collections/{collection}/config", f"/api/collections/{collection}/status",
                f"/api/runs/{run_id}", f"/api/runs/{run_id}/report",
                f"/api/runs/{run_id}/series", f"/api/collections/{collection}/runs"):  # fmt: skip
        if any(n in c.get(url).content for n in needles):
            found.append(url)
    return found


def _set_env(c: httpx.Client, collection: int, env: dict[str, str], plan: dict[str, str]) -> None:
    """The collection's and its plan's environment variables, through its config."""
    import yaml

    config = yaml.safe_load(c.get(f"/api/collections/{collection}/config").text)
    config["multi-test"]["env"] = env
    config["multi-test"]["tests"][0]["env"] = plan
    r = c.put(f"/api/collections/{collection}/config", content=yaml.safe_dump(config))
    assert r.status_code == 200, r.text


def run_to_end(api: ApiServer, c: httpx.Client, collection: int,
               properties: dict[str, str]) -> str:  # fmt: skip
    """Deploy the collection's engines, start a run with ``properties``, wait for its end."""
    assert c.post(f"/api/collections/{collection}/deploy").status_code == 201

    def ready() -> bool:
        plans = c.get(f"/api/collections/{collection}/status").json()["plans"]
        return all(p["ready"] == p["engines"] for p in plans)

    wait_until("the engines to be ready", ready, 120, lambda: api.log.read_text()[-3000:])
    r = c.post(f"/api/collections/{collection}/runs", json={"properties": properties})
    assert r.status_code == 201, r.text
    run_id: str = r.json()["id"]

    def ended() -> bool:
        return c.get(f"/api/runs/{run_id}").json()["outcome"] is not None

    wait_until("the run to end", ended, 300, lambda: api.log.read_text()[-3000:])
    return run_id


def stored_report(c: httpx.Client, run_id: str, expected: int) -> dict[str, Any]:
    """The run's report once ClickHouse holds ``expected`` samples of it (or after a minute)."""
    _stored(c, run_id, expected)
    report: dict[str, Any] = c.get(f"/api/runs/{run_id}/report").json()
    return report


def aborted_run(api: ApiServer, c: httpx.Client, collection: int, properties: dict[str, str],
                duration_s: int) -> str:  # fmt: skip
    """Run the collection (of ``duration_s``) to its end, which a criterion's ``abort`` brings
    long before that."""
    started = time.monotonic()
    run_id = run_to_end(api, c, collection, properties)
    assert time.monotonic() - started < duration_s - 10  # stopped long before its duration
    run = c.get(f"/api/runs/{run_id}").json()
    assert run["outcome"] == "aborted", run
    return run_id


def engine_runs(api: ApiServer, collection: int, run_id: str, plan: int | str = "*") -> list[Path]:
    """The run's folders on the collection's engines (of ``plan``; of every plan by default)."""
    engines = api.log.parent / "engines" / str(collection)
    return sorted(engines.glob(f"{plan}-*/work/runs/{run_id}"))


def written_in(folders: list[Path]) -> int:
    """Samples the engines wrote in these run folders' results files."""
    return sum(samples_in(f / "results.jtl") for f in folders)
