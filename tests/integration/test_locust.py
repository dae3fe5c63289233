"""Locust plans through the whole pipeline: a collection with a Locust plan on 3 engines and a
JMeter plan gives one run; every request Locust counted is in ClickHouse, per label, exactly;
users and data are divided as documented; a criterion breach stops the Locust engines, which
end gracefully."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from tests.support.api import JMX
from tests.support.local_runs import (
    Bus,
    aborted_run,
    engine_runs,
    local_stack,
    run_to_end,
    stored_report,
    threads_in,
    written_in,
)
from tests.support.plans import LOCUSTFILE, USERS_CSV

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _collection(
    c: httpx.Client, duration_s: int, thresholds: list[str], jmeter: bool = True, engines: int = 3
) -> tuple[int, int]:
    """A collection of a Locust plan on ``engines`` engines and (``jmeter``) a JMeter plan on
    one."""
    project = c.post("/api/projects", json={"name": "mixed", "group": "team-a"}).json()["id"]
    loc = c.post(f"/api/projects/{project}/plans", json={"name": "locust"}).json()["id"]
    for name, body in (("locustfile.py", LOCUSTFILE), ("users.csv", USERS_CSV)):
        r = c.put(f"/api/plans/{loc}/files/{name}", content=body)
        assert r.status_code == 200, r.text
    jm = c.post(f"/api/projects/{project}/plans", json={"name": "jmeter"}).json()["id"]
    assert c.put(f"/api/plans/{jm}/files/plan.jmx", content=JMX).status_code == 200
    assert c.put(f"/api/plans/{jm}/files/users.csv", content=b"u\na\n").status_code == 200
    collection = c.post(f"/api/projects/{project}/collections", json={"name": "mixed"}).json()
    config = {"multi-test": {
        "name": "mixed", "projectid": project, "collectionid": collection["id"],
        "thresholds": thresholds,
        "tests": [
            {"testid": loc, "engine": "locust", "users": 7, "engines": engines, "rampup": 1,
             "duration_s": duration_s, "csv_split": True},
            *([{"testid": jm, "concurrency": 2, "engines": 1, "duration_s": duration_s}]
              if jmeter else []),
        ],
    }}  # fmt: skip
    r = c.put(f"/api/collections/{collection['id']}/config", content=yaml.safe_dump(config))
    assert r.status_code == 200, r.text
    again = yaml.safe_load(c.get(f"/api/collections/{collection['id']}/config").text)
    assert again["multi-test"]["tests"][0]["engine"] == "locust"  # the config round-trips
    return collection["id"], loc


def _locust_counts(folders: list[Path]) -> tuple[Counter[str], Counter[str]]:
    """Requests and failures per name, as each engine's Locust counted them (its final stats)."""
    requests: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    for folder in folders:
        for entry in json.loads((folder / "locust-stats.json").read_text()):
            requests[entry["name"]] += entry["num_requests"]
            failures[entry["name"]] += entry["num_failures"]
    return requests, failures


def test_a_locust_plan_beside_a_jmeter_plan_counts_every_request(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    with local_stack(tmp_path, Bus(kafka_bootstrap)) as (api, _), api.client("alice") as c:
        collection, loc = _collection(c, 6, ["error_rate > 50% over 2s"])
        try:
            run_id = run_to_end(api, c, collection, {})
            run = c.get(f"/api/runs/{run_id}").json()
            assert run["outcome"] == "finished", run
            folders = engine_runs(api, collection, run_id, loc)
            assert len(folders) == 3
            requests, failures = _locust_counts(folders)
            written = written_in(engine_runs(api, collection, run_id))  # both plans
            report = stored_report(c, run_id, written)
            assert report["total"]["samples"] == written == run["samples"]
            labels = {(r["plan_id"], r["label"]): r for r in report["labels"]}
            for name in ("items", "login"):
                row = labels[(str(loc), name)]
                assert (row["samples"], row["failures"]) == (requests[name], failures[name])
            assert min(requests["items"], requests["login"]) > 0
            elapsed = [
                int(r["elapsed"])
                for f in folders
                for r in csv.DictReader((f / "results.jtl").read_text().splitlines())
                if r["label"] == "items"
            ]
            for q, key in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
                exact = float(np.percentile(elapsed, q * 100, method="inverted_cdf"))
                got = labels[(str(loc), "items")]["elapsed"][key]
                assert got == pytest.approx(exact, rel=0.01), key
            # 7 users over 3 engines: 3, 2, 2; the 5 data rows: 2, 2, 1, each with the header.
            assert sorted(threads_in(f / "results.jtl") for f in folders) == [2, 2, 3]
            shares = sorted((f / "users.csv").read_bytes().count(b"\n") for f in folders)
            assert shares == [2, 3, 3]
            plans = {str(p["plan_id"]): p["engine"] for p in c.get(
                f"/api/collections/{collection}").json()["plans"]}  # fmt: skip
            assert sorted(plans.values()) == ["jmeter", "locust"]
            assert run["plan_engines"] == plans  # what the run ran, and its report says so
            html = c.get(f"/api/runs/{run_id}/report.html").text
            assert f"plan {loc}: locust" in html
        finally:
            c.post(f"/api/collections/{collection}/purge", json={}, timeout=300)


def test_a_criterion_breach_stops_locust_engines_gracefully(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    with local_stack(tmp_path, Bus(kafka_bootstrap)) as (api, _), api.client("alice") as c:
        collection, loc = _collection(
            c, 90, ['error_rate on "items" > 50% over 2s abort'], jmeter=False, engines=1
        )
        try:
            run_id = aborted_run(api, c, collection, {"fail": "yes"}, 90)
            folders = engine_runs(api, collection, run_id, loc)
            requests, failures = _locust_counts(folders)  # written on a graceful stop only
            assert failures["items"] == requests["items"] > 0
            written = written_in(folders)
            report = stored_report(c, run_id, written)
            assert report["total"]["samples"] == written
            row = next(r for r in report["labels"] if r["label"] == "items")
            assert row["failure_messages"] == {
                "CatchResponseError: told to fail": failures["items"]
            }
        finally:
            c.post(f"/api/collections/{collection}/purge", json={}, timeout=300)
