"""Engines through the API with the local scheduler: real sidecar processes deployed, found
again by a restarted API, restarted when one dies, purged by a user and by the stream's GC —
real broker, real worker, ClickHouse behind the API's sink for the heartbeats."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from control.schedulers.processes import alive
from tests.support.api import ApiServer, make_collection, start_api
from tests.support.stream import Workers
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

SIDECARS = json.dumps({"SHIBUYA_SIDECAR_HEARTBEAT_INTERVAL_S": "1"})


def _start(
    tmp_path: Path, kafka_bootstrap: str, unique: str, tokens: dict[str, str] | None = None
) -> ApiServer:
    return start_api(tmp_path / "api", f"sqlite:///{tmp_path / 'meta.db'}", tokens,
                     KAFKA__BOOTSTRAP=kafka_bootstrap, KAFKA__TOPIC_PREFIX=unique,
                     SINK__ENABLED="true", SINK__GROUP_ID=f"{unique}-sink",
                     RUNS_GROUP_ID=f"{unique}-runs", COMMANDS_GROUP_ID=f"{unique}-commands",
                     SCHEDULER__KIND="local", SCHEDULER__SIDECAR_ENV=SIDECARS)  # fmt: skip


@pytest.fixture
def local_api(tmp_path: Path, kafka_bootstrap: str, unique: str) -> Any:
    servers = [_start(tmp_path, kafka_bootstrap, unique)]
    yield servers
    for s in servers:
        s.stop()
    for record in (tmp_path / "api" / "engines").glob("*/*/engine.json"):  # a failed test's
        pid = json.loads(record.read_text())["pid"]
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)


def _pids(api: ApiServer, collection: int) -> dict[str, int]:
    folder = api.log.parent / "engines" / str(collection)
    return {r.parent.name: json.loads(r.read_text())["pid"]
            for r in sorted(folder.glob("*/engine.json"))}  # fmt: skip


def _shibuya(api: ApiServer, *args: str) -> str:
    env = {**os.environ, "SHIBUYA_URL": api.base, "SHIBUYA_TOKEN": api.tokens["alice"],
           "COLUMNS": "200"}  # fmt: skip
    out = subprocess.run([sys.executable, "-m", "shibuya", *args], env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


def _status(api: ApiServer, collection: int) -> dict[str, Any]:
    with api.client("alice") as c:
        r = c.get(f"/api/collections/{collection}/status")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


def _plan(api: ApiServer, collection: int) -> dict[str, Any]:
    plan: dict[str, Any] = _status(api, collection)["plans"][0]
    return plan


def test_engines_are_deployed_found_again_restarted_and_purged(
    local_api: list[ApiServer], workers: Workers, tmp_path: Path, kafka_bootstrap: str,
    unique: str,
) -> None:  # fmt: skip
    workers.start(GC_IDLE_S="600")  # the sink reads heartbeats from topics the workers create
    api = local_api[0]
    collection, plan = make_collection(api, duration_s=60, engines=2)
    with api.client("alice") as c:
        first = c.post(f"/api/collections/{collection}/deploy")
        assert first.status_code == 201, first.text
        launch = first.json()
        assert (launch["engines"], launch["virtual_users"]) == (2, 10)
        pids = _pids(api, collection)
        assert set(pids) == {f"{plan}-0", f"{plan}-1"}
        again = c.post(f"/api/collections/{collection}/deploy")  # idempotent
        assert again.status_code == 200
        assert again.json()["id"] == launch["id"]
        assert _pids(api, collection) == pids  # nothing restarted
        # Changing the plans is refused while engines are deployed.
        assert c.delete(f"/api/collections/{collection}").status_code == 409

    wait_until("both engines to report ready", lambda: _plan(api, collection)["ready"] == 2, 60,
               lambda: f"{_status(api, collection)}\n{workers.logs()}")  # fmt: skip
    status = _status(api, collection)
    assert status["launch"]["id"] == launch["id"]
    expected = {"plan_id": plan, "name": "browse", "engines": 2, "deployed": 2, "ready": 2,
                "running": 0}  # fmt: skip
    assert status["plans"][0] == expected
    assert [(e["index"], e["phase"], e["state"]) for e in status["engines"]] == [
        (0, "running", "idle"), (1, "running", "idle")]  # fmt: skip

    shown = _shibuya(api, "status", str(collection))
    assert "2 asked" in shown
    assert "2 deployed" in shown
    assert "2 ready" in shown
    with api.client("alice") as c:
        log = c.get(f"/api/collections/{collection}/engines/{plan}/0/logs")
        assert log.status_code == 200
        assert f"engine {collection}-{plan}-0 waiting for commands" in log.text
        assert c.get(f"/api/collections/{collection}/engines/{plan}/7/logs").status_code == 404
    with api.client("bob") as c:
        assert c.get(f"/api/collections/{collection}/status").status_code == 404
        assert c.get(f"/api/collections/{collection}/engines/{plan}/0/logs").status_code == 404
        assert c.post(f"/api/collections/{collection}/purge", json={}).status_code == 404

    # An engine that goes away is shown exited, and a deploy starts it again. Stopped gracefully,
    # its sidecar's last heartbeat says so: not ready at once, not once that heartbeat is older
    # than the 30-s status window (the deadline is shorter than the window on purpose).
    os.kill(pids[f"{plan}-1"], signal.SIGTERM)
    wait_until("the engine gone to show", lambda: [(e["phase"], e["state"]) for e in _status(
        api, collection)["engines"]] == [("running", "idle"), ("exited", None)], 20,
        lambda: f"{_status(api, collection)}\n{workers.logs()}")  # fmt: skip
    assert _plan(api, collection)["ready"] == 1
    with api.client("alice") as c:
        assert c.post(f"/api/collections/{collection}/deploy").status_code == 200
    restarted = _pids(api, collection)
    assert restarted[f"{plan}-0"] == pids[f"{plan}-0"]
    assert restarted[f"{plan}-1"] != pids[f"{plan}-1"]

    # A restarted API finds its engines again.
    api.stop()
    api = _start(tmp_path, kafka_bootstrap, unique, api.tokens)
    local_api.append(api)
    assert _plan(api, collection)["deployed"] == 2
    assert all(alive(p) for p in restarted.values())

    with api.client("alice") as c:
        purged = c.post(f"/api/collections/{collection}/purge", json={"reason": "done"})
        assert purged.status_code == 200, purged.text
        body = purged.json()
        assert body["engines_removed"] == 2
        assert body["launch"]["purge_reason"] == "purged by alice: done"
        assert not any(alive(p) for p in restarted.values())
        assert _pids(api, collection) == {}
        again = c.post(f"/api/collections/{collection}/purge", json={}).json()
        assert again == {"engines_removed": 0, "launch": None}  # idempotent
        assert _shibuya(api, "purge", str(collection)) == "0 engines removed\n"
        history = c.get(f"/api/collections/{collection}/launches").json()["items"]
        assert [h["id"] for h in history] == [launch["id"]]
        usage = c.get("/api/usage").json()
    status = _status(api, collection)
    assert (status["launch"], status["engines"]) == (None, [])  # old heartbeats do not count
    assert status["plans"][0]["ready"] == 0

    # Usage: 2 engines and 10 virtual users for as long as the launch lasted.
    ended = history[0]
    hours = (datetime.fromisoformat(ended["purged_at"]) - datetime.fromisoformat(
        ended["launched_at"])).total_seconds() / 3600  # fmt: skip
    mine = [p for p in usage["projects"] if p["group"] == "team-a" and p["launches"]]
    assert len(mine) == 1
    assert mine[0]["engine_hours"] == pytest.approx(2 * hours)
    assert mine[0]["virtual_user_hours"] == pytest.approx(10 * hours)
    with api.client("bob") as c:
        assert all(p["group"] == "team-b" for p in c.get("/api/usage").json()["projects"])


def test_an_idle_collection_is_purged_by_the_streams_gc(
    local_api: list[ApiServer], workers: Workers
) -> None:
    workers.start(GC_IDLE_S="4", ENGINE_LOST_S="2", PURGE_SETTLE_S="5")
    workers.wait_settled()
    api = local_api[0]
    collection, _ = make_collection(api, duration_s=60, engines=2)
    deployed_at = datetime.now(UTC)
    with api.client("alice") as c:
        assert c.post(f"/api/collections/{collection}/deploy").status_code == 201
    pids = _pids(api, collection)
    told: list[datetime] = []  # the status says when the stream will purge the idle engines

    def deadline_told() -> bool:
        status = _status(api, collection)
        if status["purge_at"] is not None:
            told.append(datetime.fromisoformat(status["purge_at"]))
        return bool(told) or not status["engines"]

    wait_until("the purge deadline on the status", deadline_told, 60, workers.logs)
    assert told, "purged before the collection's status said when"
    # The engines' first heartbeat (up to a few seconds after the deploy) + GC_IDLE_S.
    assert deployed_at + timedelta(seconds=4) <= told[0] <= deployed_at + timedelta(seconds=20)

    def purged() -> bool:  # the status polled meanwhile: its answer is shared for a second
        _status(api, collection)
        with api.client("alice") as c:
            launch = c.get(f"/api/collections/{collection}/launches").json()["items"][0]
        return launch["purged_at"] is not None

    wait_until(
        "the GC's purge to be recorded",
        purged,
        90,
        lambda: f"{_status(api, collection)}\n{workers.logs()}\n{api.log.read_text()}",
    )
    assert not any(alive(p) for p in pids.values())
    assert _pids(api, collection) == {}
    with api.client("alice") as c:
        launch = c.get(f"/api/collections/{collection}/launches").json()["items"][0]
    assert launch["purge_reason"].startswith("idle for ")
    # The replica that executed the purge does not serve a status made before it (neither the
    # engines nor their deadline), though that one was made less than a second ago.
    status = _status(api, collection)
    assert (status["engines"], status["purge_at"]) == ([], None), status
