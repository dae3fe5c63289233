"""Runs through the whole control path: the API starts a run (one per collection), the stream
tracks and ends it, the API records the end — real API server, real broker, a real worker, the
real ClickHouse engine behind the API's sink. Engines are heartbeats
(tests/support/lifecycle.py); they fetch plan files with the run's token."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from shibuya.dev import kafka_io
from tests.support.api import FAST, ApiServer, make_collection
from tests.support.lifecycle import Harness
from tests.support.stream import Workers, generate, send
from tests.support.waiting import wait_until
from wire import EngineState, StartEngines, Topic, decode_command, topic_name

pytestmark = pytest.mark.integration


def _start_command(bootstrap: str, prefix: str, run_id: str) -> StartEngines:
    async def read() -> StartEngines:
        async with (
            asyncio.timeout(30),
            kafka_io.read_from_start(bootstrap, topic_name(Topic.COMMANDS, prefix)) as records,
        ):
            async for r in records:
                command = decode_command(r.value or b"")
                if isinstance(command, StartEngines) and command.run_id == run_id:
                    return command
        raise AssertionError("no start command")

    return asyncio.run(read())


def test_a_run_started_by_the_api_is_ended_by_the_stream_and_recorded(
    live_api: ApiServer, workers: Workers, harness: Harness, kafka_bootstrap: str, unique: str
) -> None:
    workers.start(**FAST)
    workers.wait_settled()
    collection, _ = make_collection(live_api, duration_s=3)
    with live_api.client("alice") as c:
        r = c.post(f"/api/collections/{collection}/runs")
        assert r.status_code == 201, r.text
        run_id = r.json()["id"]
        again = c.post(f"/api/collections/{collection}/runs")
        assert again.status_code == 409  # one active run per collection
    start = _start_command(kafka_bootstrap, unique, run_id)
    assert (start.engine_count, start.threads_per_engine, start.duration_s) == (2, 5, 3)
    assert {f.name for f in start.files} == {"plan.jmx", "users.csv"}

    # The commands topic, which every engine reads, carries no secret; an engine fetches its
    # run's files with an engine token of the run's collection, and with nothing else.
    assert start.file_token == ""
    jmx = next(f for f in start.files if f.name == "plan.jmx")
    with live_api.client("alice") as c:
        issued = c.post(f"/api/collections/{collection}/engine-tokens")
        assert issued.status_code == 201, issued.text
        token = issued.json()["token"]
        other, _ = make_collection(live_api, duration_s=3)
        elsewhere = c.post(f"/api/collections/{other}/engine-tokens").json()["token"]
    with live_api.client("bob") as c:  # not bob's collection: it does not exist for him
        assert c.post(f"/api/collections/{collection}/engine-tokens").status_code == 404
    with httpx.Client() as engine:
        got = engine.get(jmx.url, headers={"Authorization": f"Bearer {token}"})
        assert got.status_code == 200
        assert hashlib.sha256(got.content).hexdigest() == jmx.sha256
        for wrong in ("she_wrong", elsewhere, live_api.tokens["alice"]):
            refused = engine.get(jmx.url, headers={"Authorization": f"Bearer {wrong}"})
            assert refused.status_code == 401
        assert engine.get(jmx.url).status_code == 401

    harness.add_engines(run_id, str(collection), 2, EngineState.RUNNING)

    def run() -> dict[str, Any]:
        with live_api.client("alice") as c:
            body: dict[str, Any] = c.get(f"/api/runs/{run_id}").json()
            return body

    wait_until("the run to be recorded as ended", lambda: run()["outcome"] is not None, 90,
               lambda: f"{run()}\n{workers.logs()}")  # fmt: skip
    ended = run()
    assert ended["outcome"] == "finished"
    assert ended["reason"] == "2 of 2 engines finished"
    assert ended["engines"] == {"expected": 2, "started": 2, "finished": 2, "failed": 0, "lost": 0}
    # No engine sent a sample: the criterion was never evaluated, so it does not pass.
    assert [(v["criterion"], v["passed"], v["error"]) for v in ended["criteria"]] == [
        ("error_rate > 50% over 3s", False, "not evaluated: no second of the run was judged")
    ]
    assert [s.reason for s in harness.decisions.stops_of(run_id)] == ["duration reached"]
    with httpx.Client() as engine:  # the token opens nothing once the run has ended
        after = engine.get(jmx.url, headers={"Authorization": f"Bearer {token}"})
        assert after.status_code == 403
    with live_api.client("alice") as c:
        assert c.post(f"/api/runs/{run_id}/stop", json={}).status_code == 409
        history = c.get(f"/api/collections/{collection}/runs").json()
        assert [r["id"] for r in history["items"]] == [run_id]
    with live_api.client("bob") as c:
        assert c.get(f"/api/runs/{run_id}").status_code == 404
    with live_api.client("alice") as c:  # nor anything once revoked
        assert c.delete(f"/api/collections/{collection}/engine-tokens").json() == {"revoked": 1}
        second = c.post(f"/api/collections/{collection}/runs").json()["id"]
        url = next(f.url for f in _start_command(kafka_bootstrap, unique, second).files
                   if f.name == "plan.jmx")  # fmt: skip
        with httpx.Client() as engine:
            revoked = engine.get(url, headers={"Authorization": f"Bearer {token}"})
            assert revoked.status_code == 401
        assert c.post(f"/api/runs/{second}/stop", json={}).status_code == 202


def test_a_stop_through_the_api_aborts_the_run(
    live_api: ApiServer, workers: Workers, harness: Harness
) -> None:
    workers.start(**FAST)
    workers.wait_settled()
    collection, _ = make_collection(live_api, duration_s=600)
    with live_api.client("alice") as c:
        run_id = c.post(f"/api/collections/{collection}/runs").json()["id"]
    harness.add_engines(run_id, str(collection), 2, EngineState.RUNNING)
    wait_until("the run to run", lambda: _state(live_api, run_id) == "running", 60, workers.logs)
    with live_api.client("alice") as c:
        r = c.post(f"/api/runs/{run_id}/stop", json={"reason": "enough"})
        assert r.status_code == 202
    wait_until("the run to end", lambda: _outcome(live_api, run_id) is not None, 60,
               workers.logs)  # fmt: skip
    with live_api.client("alice") as c:
        ended = c.get(f"/api/runs/{run_id}").json()
    assert ended["outcome"] == "aborted"
    assert ended["reason"] == "ended early: stopped by alice: enough"


def _state(api: ApiServer, run_id: str) -> object:
    with api.client("alice") as c:
        return c.get(f"/api/runs/{run_id}").json()["state"]


def _outcome(api: ApiServer, run_id: str) -> object:
    with api.client("alice") as c:
        return c.get(f"/api/runs/{run_id}").json()["outcome"]


def test_shibuya_run_follows_the_run_and_exits_with_its_verdict(
    live_api: ApiServer, workers: Workers, harness: Harness, kafka_bootstrap: str
) -> None:
    workers.start(**FAST)
    workers.wait_settled()
    collection, _ = make_collection(live_api, duration_s=600)
    with live_api.client("alice") as c:  # 4 engines × 400 samples/s: below the floor
        body = {"thresholds": ["rps < 100000 for 2s abort", "error_rate > 50% over 5s"]}
        assert c.patch(f"/api/collections/{collection}", json=body).status_code == 200
    env = {**os.environ, "SHIBUYA_URL": live_api.base, "SHIBUYA_TOKEN": live_api.tokens["alice"],
           "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}  # fmt: skip
    argv = [sys.executable, "-m", "shibuya", "run", str(collection)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.readline()
    run_id = first.split()[1]
    assert first == f"run {run_id} started\n"
    harness.add_engines(run_id, str(collection), 2, EngineState.RUNNING)
    send(kafka_bootstrap, harness.topics[Topic.RESULTS],
         generate(run_id, seconds=6, start_s=int(time.time()) - 1).messages)  # fmt: skip
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 16 + 4, out  # a throughput criterion failed
    assert "rps < 100000 for 2s abort" in out
    assert "FAILED" in out
    assert "passed" in out  # the error-rate criterion


def test_ctrl_c_on_shibuya_run_stops_the_run_and_waits_for_its_end(
    live_api: ApiServer, workers: Workers, harness: Harness
) -> None:
    workers.start(**FAST)
    workers.wait_settled()
    collection, _ = make_collection(live_api, duration_s=600)
    env = {**os.environ, "SHIBUYA_URL": live_api.base, "SHIBUYA_TOKEN": live_api.tokens["alice"],
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    argv = [sys.executable, "-m", "shibuya", "run", str(collection)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    assert proc.stdout is not None
    run_id = proc.stdout.readline().split()[1]
    harness.add_engines(run_id, str(collection), 2, EngineState.RUNNING)
    wait_until("the run to run", lambda: _state(live_api, run_id) == "running", 60, workers.logs)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 3, out  # aborted: not passed, not an API error
    assert f"SIGINT: stopping run {run_id} and waiting for its end" in out
    with live_api.client("alice") as c:
        ended = c.get(f"/api/runs/{run_id}").json()
    assert (ended["outcome"], ended["reason"]) == (
        "aborted",
        "ended early: stopped by alice: SIGINT",
    )
