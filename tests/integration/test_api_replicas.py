"""Two API replicas on one PostgreSQL database, requests alternating between them: races are
decided by the database (one run, one launch), and a replica killed in the middle of a run loses
nothing — the other records the run's end. Real servers, real broker, a real worker; engines are
heartbeats."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.api import FAST, JMX, ApiServer, start_api
from tests.support.kafka import read_all
from tests.support.lifecycle import Harness
from tests.support.stream import Workers
from tests.support.waiting import wait_until
from wire import EngineState, StartEngines, Topic, decode_command, topic_name

pytestmark = pytest.mark.integration


@pytest.fixture
def replicas(
    tmp_path: Path, postgres_url: str, kafka_bootstrap: str, unique: str
) -> Iterator[list[ApiServer]]:
    shared: Any = {"KAFKA__BOOTSTRAP": kafka_bootstrap, "KAFKA__TOPIC_PREFIX": unique,
              "RUNS_GROUP_ID": f"{unique}-runs", "COMMANDS_GROUP_ID": f"{unique}-commands",
              "FILES__DIR": str(tmp_path / "files")}  # fmt: skip
    a = start_api(tmp_path / "a", postgres_url, **shared)
    b = start_api(tmp_path / "b", postgres_url, a.tokens, **shared)  # the same users
    yield [a, b]
    a.stop()
    b.stop()


def _alternating(servers: list[ApiServer]) -> Iterator[httpx.Client]:
    for server in itertools.cycle(servers):
        yield server.client("alice")


def _race(calls: list[Any]) -> list[httpx.Response]:
    """Run the calls at once (one thread each); their responses in order."""
    out: list[Any] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def go(i: int) -> None:
        barrier.wait()
        out[i] = calls[i]()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def _starts(bootstrap: str, prefix: str) -> list[StartEngines]:
    records = asyncio.run(read_all(bootstrap, topic_name(Topic.COMMANDS, prefix)))
    commands = [decode_command(r.value or b"") for r in records]
    return [c for c in commands if isinstance(c, StartEngines)]


def test_two_replicas_decide_races_in_the_database_and_survive_one_killed_mid_run(
    replicas: list[ApiServer], workers: Workers, harness: Harness, kafka_bootstrap: str,
    unique: str,
) -> None:  # fmt: skip
    workers.start(**FAST)
    workers.wait_settled()
    a, b = replicas
    clients = _alternating(replicas)
    with next(clients) as c:
        project = c.post("/api/projects", json={"name": "shop", "group": "team-a"}).json()["id"]
    with next(clients) as c:  # the other replica sees it at once
        plan = c.post(f"/api/projects/{project}/plans", json={"name": "browse"}).json()["id"]
    with next(clients) as c:
        assert c.put(f"/api/plans/{plan}/files/plan.jmx", content=JMX).status_code == 200
    with next(clients) as c:  # a file uploaded through one is served by the other
        assert c.get(f"/api/plans/{plan}/files/plan.jmx").content == JMX
        collection = c.post(f"/api/projects/{project}/collections",
                            json={"name": "checkout"}).json()["id"]  # fmt: skip
    config = {"multi-test": {"name": "checkout", "projectid": project, "collectionid": collection,
                             "tests": [{"testid": plan, "concurrency": 5, "engines": 2,
                                        "duration_s": 6}]}}  # fmt: skip
    with next(clients) as c:
        r = c.put(f"/api/collections/{collection}/config", content=yaml.safe_dump(config))
        assert r.status_code == 200, r.text

    # Both replicas deploy at once: one launch. Both start a run at once: one run.
    ca, cb = a.client("alice"), b.client("alice")
    with ca, cb:
        deploys = _race([lambda: ca.post(f"/api/collections/{collection}/deploy"),
                         lambda: cb.post(f"/api/collections/{collection}/deploy")])  # fmt: skip
        assert sorted(r.status_code for r in deploys) == [200, 201]
        assert deploys[0].json()["id"] == deploys[1].json()["id"]
        triggers = _race([lambda: ca.post(f"/api/collections/{collection}/runs"),
                          lambda: cb.post(f"/api/collections/{collection}/runs")])  # fmt: skip
    assert sorted(r.status_code for r in triggers) == [201, 409], [r.text for r in triggers]
    run_id = next(r.json()["id"] for r in triggers if r.status_code == 201)
    harness.add_engines(run_id, str(collection), 2, EngineState.RUNNING)
    wait_until("the run to run", lambda: _run(b, run_id)["state"] == "running", 60, workers.logs)

    # One replica dies in the middle of the run; the other records its end.
    os.kill(a.proc.pid, signal.SIGKILL)
    a.proc.wait()
    wait_until("the surviving replica to record the end",
               lambda: _run(b, run_id)["outcome"] is not None, 120,
               lambda: f"{_run(b, run_id)}\n{workers.logs()}")  # fmt: skip
    ended = _run(b, run_id)
    assert ended["outcome"] == "finished"
    assert ended["engines"]["finished"] == 2
    with b.client("alice") as c:
        history = c.get(f"/api/collections/{collection}/runs").json()
        launches = c.get(f"/api/collections/{collection}/launches").json()
    assert [r["id"] for r in history["items"]] == [run_id]  # no second run
    assert launches["total"] == 1
    starts = [s for s in _starts(kafka_bootstrap, unique) if s.collection_id == str(collection)]
    assert [s.run_id for s in starts] == [run_id]  # the engines were told to start once


def _run(api: ApiServer, run_id: str) -> dict[str, Any]:
    with api.client("alice") as c:
        body: dict[str, Any] = c.get(f"/api/runs/{run_id}").json()
        return body
