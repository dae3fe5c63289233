"""A test plan is code: on the local scheduler, one group's JMX must not reach the API's data.

alice's plan carries a JSR223 element (Groovy) that looks for the API's metadata database,
another group's (bob's) plan file, tries to write into the API's data directory, reads a secret
from the API's environment, and counts the processes it can see; it writes what it found into its
sample's label, which the engine's JTL keeps. Run by real JMeter under the local scheduler:

* with the sandbox (bubblewrap, the default where it is installed): it finds nothing;
* without it, the API refuses to start with authentication on — unless told every user may run
  code as the API's user (``SCHEDULER__SINGLE_TENANT``), and then the same plan reads all of it,
  which is why the default is what it is.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from control.schedulers import sandbox
from shibuya.dev import jmeter, target
from tests.support.api import FAST, JMX, ApiServer, start_api
from tests.support.stream import Workers
from tests.support.waiting import wait_until

SECRET = "s3cret-of-the-api"
PROBE = """
def probe(String p) { def f = new File(p); f.exists() ? (f.canRead() ? "read" : "seen") : "absent" }
def written = "denied"
try { new File("DATA/pwned").text = "x"; written = "written" } catch (e) { }
def pids = new File("/proc").list().findAll { it ==~ /\\d+/ }.size()
prev.setSampleLabel("probe db=" + probe("DB") + " plan=" + probe("PLAN") + " write=" + written
    + " env=" + (System.getenv("SHIBUYA_PROBE_SECRET") ?: "none") + " pids=" + pids
    + " token=" + (System.getenv("SHIBUYA_SIDECAR_ENGINE_TOKEN") ? "seen" : "none"))
"""
pytestmark = pytest.mark.skipif(sandbox.available() is None, reason="bubblewrap is not installed")


def _attack(data: Path, db: Path, plan_file: Path) -> bytes:
    script = (PROBE.replace("DATA", str(data)).replace("DB", str(db))
              .replace("PLAN", str(plan_file)))  # fmt: skip
    escaped = script.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    element = f"""<JSR223PostProcessor guiclass="TestBeanGUI" testclass="JSR223PostProcessor"
      testname="probe"><stringProp name="scriptLanguage">groovy</stringProp>
      <stringProp name="cacheKey">true</stringProp>
      <stringProp name="script">{escaped}</stringProp></JSR223PostProcessor><hashTree/>"""
    return JMX.replace(b"<hashTree/>", f"<hashTree>{element}</hashTree>".encode(), 1)


@pytest.mark.parametrize("sandboxed", [True, False])
def test_a_plan_cannot_read_the_api_s_data_from_a_sandboxed_engine(
    sandboxed: bool, tmp_path: Path, workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    workers.start(**FAST)
    monkeypatch.setenv("SHIBUYA_PROBE_SECRET", SECRET)  # in the API's environment
    data, db = tmp_path / "api", tmp_path / "meta.db"
    with target.serve() as port:
        sidecars = {"SHIBUYA_SIDECAR_JMETER__PROPERTIES": json.dumps({"target.port": str(port)}),
                    "SHIBUYA_SIDECAR_HEARTBEAT_INTERVAL_S": "1"}  # fmt: skip
        settings = {"KAFKA__BOOTSTRAP": workers.bootstrap, "KAFKA__TOPIC_PREFIX": workers.app_id,
                    "SCHEDULER__KIND": "local", "SCHEDULER__JMETER_HOME": str(jmeter.install()),
                    "SCHEDULER__SIDECAR_ENV": json.dumps(sidecars)}  # fmt: skip
        if not sandboxed:
            refused = tmp_path / "refused"
            with pytest.raises(AssertionError, match="runs every user's test plan"):
                start_api(refused, f"sqlite:///{refused / 'meta.db'}", None,
                          SCHEDULER__SANDBOX="none", **settings)  # fmt: skip
            settings |= {"SCHEDULER__SANDBOX": "none", "SCHEDULER__SINGLE_TENANT": "true"}
        api = start_api(data, f"sqlite:///{db}", None, **settings)
        api_log = api.log
        try:
            label = _probe(api, data, db)
        finally:
            api.stop()
    found = dict(re.findall(r"(\w+)=(\S+)", label))
    # The API's data, the plan files, the engines' folders and what they wrote: the user's alone.
    ours = [data, db, *(p for p in data.rglob("*") if p != api_log)]  # the log is the test's
    assert [p for p in ours if p.stat().st_mode & 0o077] == []
    if sandboxed:
        assert (found["db"], found["plan"], found["env"]) == ("absent", "absent", "none"), label
        assert int(found["pids"]) < 10  # its own few: not the API, nor anything else here
        assert not (data / "pwned").exists()  # it wrote, if at all, into a /tmp of its own
    else:  # what the sandbox is for: the same plan reads it all
        assert (found["db"], found["plan"], found["write"]) == ("read", "read", "written"), label
        assert (data / "pwned").exists()
    assert found["env"] == "none"  # an engine never gets the API's environment
    assert found["token"] == "none"  # nor the plan its sidecar's settings


def _probe(api: ApiServer, data: Path, db: Path) -> str:
    with api.client("bob") as c:  # another group's plan, stored by the API
        project = c.post("/api/projects", json={"name": "b", "group": "team-b"}).json()["id"]
        plan = c.post(f"/api/projects/{project}/plans", json={"name": "b"}).json()["id"]
        assert c.put(f"/api/plans/{plan}/files/secret.jmx", content=JMX).status_code == 200
    plan_file = data / "files" / "plans" / str(plan) / "secret.jmx"
    assert plan_file.exists()
    with api.client("alice") as c:
        project = c.post("/api/projects", json={"name": "a", "group": "team-a"}).json()["id"]
        mine = c.post(f"/api/projects/{project}/plans", json={"name": "a"}).json()["id"]
        attack = _attack(data, db, plan_file)
        assert c.put(f"/api/plans/{mine}/files/probe.jmx", content=attack).status_code == 200
        collection = c.post(f"/api/projects/{project}/collections",
                            json={"name": "a"}).json()["id"]  # fmt: skip
        config = {"multi-test": {"name": "a", "projectid": project, "collectionid": collection,
                                 "tests": [{"testid": mine, "concurrency": 1, "engines": 1,
                                            "duration_s": 3}]}}  # fmt: skip
        assert c.put(f"/api/collections/{collection}/config",
                     content=yaml.safe_dump(config)).status_code == 200  # fmt: skip
        run_id = c.post(f"/api/collections/{collection}/runs").json()["id"]
        jtls = data / "engines" / str(collection)
        probes: list[str] = []

        def probed() -> bool:
            for jtl in jtls.glob(f"*/work/runs/{run_id}/results.jtl"):
                probes.extend(re.findall(r"probe [^,]*", jtl.read_text()))
            return bool(probes)

        wait_until("the probe's sample", probed, 120, lambda: api.log.read_text()[-3000:])
        wait_until("the run's end", lambda: c.get(f"/api/runs/{run_id}").json()["outcome"]
                   is not None, 60)  # fmt: skip
        engine_files = list(jtls.rglob("*"))  # plan copies, results, checkpoints, JMeter's log
        assert len(engine_files) > 5
        assert [p for p in engine_files if p.stat().st_mode & 0o077] == []
        # A purge stops each sidecar with SIGTERM: it drains and says so before it exits.
        logs = [log.open() for log in jtls.glob("*/sidecar.log")]  # still readable once deleted
        assert c.post(f"/api/collections/{collection}/purge", json={}).status_code == 200
        ends = [log.read().strip().splitlines()[-1] for log in logs]
        for log in logs:
            log.close()
        assert len(ends) == 1
        assert "stopped; " in ends[0], ends
        assert _zombies(api.proc.pid) == []  # what started the engine is reaped too
    return probes[0]


def _zombies(pid: int) -> list[int]:
    """The children of ``pid`` that have exited but were not waited for."""
    tasks = Path(f"/proc/{pid}/task").glob("*/children")  # a child is its spawning thread's
    children = [c for t in tasks for c in t.read_text().split()]
    return [int(c) for c in children if Path(f"/proc/{c}/stat").read_text().split()[2] == "Z"]
