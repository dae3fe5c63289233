"""Gatling plans through the whole pipeline: a Java simulation on 3 engines, compiled on each;
every response Gatling's own report counts is in ClickHouse, per label, exactly; the users are
divided as documented; an ``abort`` criterion stops the engines."""

from __future__ import annotations

import csv
import re
import subprocess
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from shibuya.dev import gatling
from tests.support.local_runs import (
    Bus,
    aborted_run,
    engine_runs,
    local_stack,
    run_to_end,
    stored_report,
    threads_in,
)
from tests.support.plans import SIMULATION

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _collection(
    c: httpx.Client, duration_s: int, thresholds: list[str], engines: int = 3
) -> tuple[int, int]:
    """A collection of the simulation on ``engines`` engines, 7 users among them."""
    project = c.post("/api/projects", json={"name": "gat", "group": "team-a"}).json()["id"]
    plan = c.post(f"/api/projects/{project}/plans", json={"name": "gatling"}).json()["id"]
    r = c.put(f"/api/plans/{plan}/files/ShopSimulation.java", content=SIMULATION)
    assert r.status_code == 200, r.text
    collection = c.post(f"/api/projects/{project}/collections", json={"name": "g"}).json()["id"]
    config = {"multi-test": {"name": "g", "projectid": project, "collectionid": collection,
                             "thresholds": thresholds,
                             "tests": [{"testid": plan, "engine": "gatling", "users": 7,
                                        "engines": engines,
                                        "duration_s": duration_s}]}}  # fmt: skip
    r = c.put(f"/api/collections/{collection}/config", content=yaml.safe_dump(config))
    assert r.status_code == 200, r.text
    return collection, plan


def _gatling_report(folder: Path) -> Counter[tuple[str, str]]:
    """Requests and failures per name, as Gatling's own report of the engine's run counts them
    (``-ro``: from its simulation.log)."""
    [run] = (folder / "gatling").iterdir()
    home = gatling.install()
    lib = ":".join(str(p) for p in sorted((home / "lib").glob("*.jar")))
    subprocess.run(["java", "--add-opens=java.base/java.lang=ALL-UNNAMED",
                    "-Dgatling.data.enableAnalytics=false", "-cp", f"{lib}:{home / 'launcher'}",
                    "io.gatling.app.Gatling", "-ro", run.name, "-rf", str(run.parent)],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    html = (run / "index.html").read_text()
    counts: Counter[tuple[str, str]] = Counter()
    rows = re.findall(r'class="ellipsed-name">([^<]+)</span>.*?col-2">(\d+)</td>.*?'
                      r'col-4">(\d+)</td>', html, flags=re.S)  # fmt: skip
    for name, total, ko in rows:
        counts[(name, "requests")] += int(total)
        counts[(name, "failures")] += int(ko)
    return counts


def _lines(folders: list[Path]) -> list[dict[str, str]]:
    return [row for f in folders
            for row in csv.DictReader((f / "results.jtl").read_text().splitlines())]  # fmt: skip


def test_a_gatling_plan_on_three_engines_counts_every_response(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    with local_stack(tmp_path, Bus(kafka_bootstrap)) as (api, _), api.client("alice") as c:
        collection, plan = _collection(c, 40, ["error_rate > 50% over 2s"])
        try:
            run_id = run_to_end(api, c, collection, {"seconds": "4"})  # ends on its own
            run = c.get(f"/api/runs/{run_id}").json()
            assert run["outcome"] == "finished", run
            folders = engine_runs(api, collection, run_id, plan)
            assert len(folders) == 3
            own: Counter[tuple[str, str]] = Counter()
            for folder in folders:
                own += _gatling_report(folder)
            lines = _lines(folders)
            report = stored_report(c, run_id, len(lines))
            assert report["total"]["samples"] == len(lines) == run["samples"]
            labels = {r["label"]: r for r in report["labels"]}
            for name in ("items", "login"):
                row = labels[name]
                assert (row["samples"], row["failures"]) == (
                    own[(name, "requests")],
                    own[(name, "failures")],
                )
            assert own[("items", "requests")] > 0
            assert labels["login"]["codes"].get("500", 0) == own[("login", "failures")]
            elapsed = [int(r["elapsed"]) for r in lines if r["label"] == "items"]
            for q, key in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
                exact = float(np.percentile(elapsed, q * 100, method="inverted_cdf"))
                assert labels["items"]["elapsed"][key] == pytest.approx(exact, rel=0.01), key
            # 7 users over 3 engines: 3, 2, 2 (the most each engine had running).
            assert sorted(threads_in(f / "results.jtl") for f in folders) == [2, 2, 3]
        finally:
            c.post(f"/api/collections/{collection}/purge", json={}, timeout=300)


def test_a_criterion_breach_stops_gatling_engines(tmp_path: Path, kafka_bootstrap: str) -> None:
    with local_stack(tmp_path, Bus(kafka_bootstrap)) as (api, _), api.client("alice") as c:
        collection, plan = _collection(c, 90, ['error_rate on "items" > 50% over 2s abort'],
                                       engines=1)  # fmt: skip
        try:
            run_id = aborted_run(api, c, collection, {"fail": "yes"}, 90)
            lines = _lines(engine_runs(api, collection, run_id, plan))
            failed = [r for r in lines if r["label"] == "items" and r["success"] == "false"]
            assert len(failed) == sum(r["label"] == "items" for r in lines) > 0
            report = stored_report(c, run_id, len(lines))
            assert report["total"]["samples"] == len(lines)
            row = next(r for r in report["labels"] if r["label"] == "items")
            assert row["failure_messages"] == {failed[0]["failureMessage"]: len(failed)}
        finally:
            c.post(f"/api/collections/{collection}/purge", json={}, timeout=300)
