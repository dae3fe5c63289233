"""Bring your own engine: a run announced to the API (``external``) and fed by tail-only
sidecars gets the live status, the verdicts and the report of any run. One sidecar follows a
results file JMeter wrote elsewhere — the report's numbers are JMeter's own dashboard
statistics of that file — the other a JSON-lines file, every line counted."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from shibuya.dev import target
from shibuya.dev.jmeter import install, launcher
from shibuya.dev.main_job import samples_in
from tests.support.api import ApiServer
from tests.support.local_runs import Bus, local_stack
from tests.support.sidecars import start_jmeter
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

JSON_SAMPLES = 1000


def _jmeter_results(tmp_path: Path) -> tuple[Path, dict[str, dict[str, float]]]:
    """A results file JMeter wrote on its own, and its dashboard's statistics (``-g``)."""
    jtl = tmp_path / "elsewhere" / "results.jtl"
    jtl.parent.mkdir()
    with target.serve() as port:
        jmeter = start_jmeter(jtl, port, duration_s=3)
        assert jmeter.wait(60) == 0
    dashboard = tmp_path / "elsewhere" / "dashboard"
    subprocess.run(["java", "-jar", str(launcher(install())), "-g", str(jtl), "-o",
                    str(dashboard), "-j", str(jtl.with_suffix(".g.log"))],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    stats: dict[str, dict[str, float]] = json.loads((dashboard / "statistics.json").read_text())
    return jtl, stats


def _elapsed_by_label(jtl: Path) -> dict[str, np.ndarray]:
    by_label: dict[str, list[int]] = {}
    with jtl.open(newline="") as f:
        for r in csv.DictReader(f):
            by_label.setdefault(r["label"], []).append(int(r["elapsed"]))
    return {label: np.sort(np.array(v)) for label, v in by_label.items()}


def _bracket(values: np.ndarray, interpolated: float) -> tuple[float, float]:
    """The two samples JMeter's dashboard interpolates a percentile between: the report's
    nearest-rank percentile is one of them, within the histogram's 1 %."""
    i = int(np.searchsorted(values, interpolated, side="right"))
    return float(values[max(i - 1, 0)]), float(values[min(i, values.size - 1)])


def _json_lines(path: Path) -> Path:
    rng = np.random.default_rng(7)
    now_ms = 1_764_288_000_000
    with path.open("w") as f:
        for i in range(JSON_SAMPLES):
            f.write(json.dumps({"ts_ms": now_ms + i * 3, "elapsed_ms": int(rng.integers(1, 400)),
                                "label": "json", "success": i % 10 != 0, "code": "200",
                                "message": "slow", "threads": 4}) + "\n")  # fmt: skip
    return path


def _announced(c: httpx.Client) -> tuple[int, int, str]:
    project = c.post("/api/projects", json={"name": "own", "group": "team-a"}).json()["id"]
    plan = c.post(f"/api/projects/{project}/plans", json={"name": "elsewhere"}).json()["id"]
    collection = c.post(f"/api/projects/{project}/collections", json={"name": "own"}).json()["id"]
    config = {"multi-test": {"name": "own", "projectid": project, "collectionid": collection,
                             "thresholds": ["error_rate > 99% over 2s"],
                             "tests": [{"testid": plan, "concurrency": 1, "engines": 2,
                                        "duration_s": 60}]}}  # fmt: skip
    r = c.put(f"/api/collections/{collection}/config", content=yaml.safe_dump(config))
    assert r.status_code == 200, r.text
    r = c.post(f"/api/collections/{collection}/runs", json={"external": True})
    assert r.status_code == 201, r.text
    status = c.get(f"/api/collections/{collection}/status").json()
    assert status["plans"][0]["deployed"] == 0  # nothing was deployed for it
    return collection, plan, r.json()["id"]


def _tail(api: ApiServer, bus: Bus, path: Path, run_id: str, collection: int, plan: int,
          index: int) -> subprocess.Popen[bytes]:  # fmt: skip
    env = {**os.environ, "SHIBUYA_SIDECAR_KAFKA__BOOTSTRAP": bus.bootstrap,
           "SHIBUYA_SIDECAR_HEALTH_PORT": "0", "SHIBUYA_SIDECAR_HEARTBEAT_INTERVAL_S": "1",
           "SHIBUYA_SIDECAR_WORK_DIR": str(path.parent / f"sidecar-{index}"),
           "SHIBUYA_SIDECAR_ENGINE__ENGINE_INDEX": str(index)}  # fmt: skip
    argv = [sys.executable, "-m", "shibuya", "sidecar", "tail", str(path), "--run-id", run_id,
            "--collection-id", str(collection), "--plan-id", str(plan)]  # fmt: skip
    with (path.parent / f"sidecar-{index}.log").open("wb") as log:
        return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)


def test_an_announced_run_fed_by_tail_only_sidecars_gets_a_report(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    jtl, dashboard = _jmeter_results(tmp_path)
    jsonl = _json_lines(tmp_path / "elsewhere" / "results.jsonl")
    written = samples_in(jtl) + JSON_SAMPLES
    bus = Bus(kafka_bootstrap)
    with local_stack(tmp_path, bus) as (api, _), api.client("alice") as c:
        collection, plan, run_id = _announced(c)
        # The JSON lines first: their seconds, a year before JMeter's, are judged first, and
        # the criteria cross the year between them (the worker once stepped through each second).
        tails = [_tail(api, bus, jsonl, run_id, collection, plan, 1)]
        try:

            def counted(samples: int) -> bool:
                run = c.get(f"/api/runs/{run_id}").json()
                return bool(run["state"] == "running" and run["samples"] == samples)

            def log() -> str:
                return api.log.read_text()[-2000:]

            wait_until("the JSON lines counted", lambda: counted(JSON_SAMPLES), 120, log)
            tails.append(_tail(api, bus, jtl, run_id, collection, plan, 0))
            wait_until("every sample counted", lambda: counted(written), 120, log)
        finally:
            for t in tails:  # a tail-only sidecar ends on SIGTERM: its engine has finished
                t.send_signal(signal.SIGTERM)
                assert t.wait(60) == 0
        wait_until("the run to end", lambda: c.get(f"/api/runs/{run_id}").json()["outcome"]
                   is not None, 60)  # fmt: skip
        run = c.get(f"/api/runs/{run_id}").json()
        assert (run["outcome"], run["samples"], run["samples_missing"]) == ("finished", written, 0)
        assert [v["passed"] for v in run["criteria"]] == [True]
        report = c.get(f"/api/runs/{run_id}/report").json()
        labels = {r["label"]: r for r in report["labels"]}
        assert (labels["json"]["samples"], labels["json"]["failures"]) == (JSON_SAMPLES, 100)
        assert labels["json"]["failure_messages"] == {"slow": 100}
        elapsed = _elapsed_by_label(jtl)
        for name, stats in dashboard.items():
            row = report["total"] if name == "Total" else labels[name]
            if name == "Total":
                continue  # the run's total holds the JSON lines too
            assert (row["samples"], row["failures"]) == (stats["sampleCount"], stats["errorCount"])
            assert (row["elapsed_min_ms"], row["elapsed_max_ms"]) == (
                stats["minResTime"],
                stats["maxResTime"],
            )
            assert row["elapsed_mean_ms"] == pytest.approx(stats["meanResTime"], rel=1e-6)
            for key, pct in (("p90", "pct1ResTime"), ("p95", "pct2ResTime"),
                             ("p99", "pct3ResTime")):  # fmt: skip
                lo, hi = _bracket(elapsed[name], stats[pct])
                assert lo * 0.99 <= row["elapsed"][key] <= hi * 1.01, (name, key, lo, hi)
