"""A plan's own jar (a sampler of its own): refused unless the server takes them; where it does,
checked, loaded by every engine's JMeter, its samples counted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shibuya.dev.maven import cache_root, fetch
from tests.support.api import JMX, ApiServer
from tests.support.local_runs import Bus, Load, run_on_local_engines

pytestmark = pytest.mark.integration

DUMMY = "kg.apc.jmeter.samplers.DummySampler"
#: two-samplers.jmx with a third sampler that no engine has: the Dummy Sampler of a plugin.
PLAN = re.sub(
    rb"(</HTTPSamplerProxy>\s*<hashTree/>)(\s*</hashTree>\s*</hashTree>\s*</hashTree>)",
    (rb"\1" + f'<{DUMMY} guiclass="{DUMMY}Gui" testclass="{DUMMY}" testname="dummy">'
     '<boolProp name="SUCCESFULL">true</boolProp>'
     '<stringProp name="RESPONSE_CODE">200</stringProp>'
     '<stringProp name="RESPONSE_TIME">2</stringProp>'
     f"</{DUMMY}><hashTree/>".encode() + rb"\2"),
    JMX,
)  # fmt: skip


def _dummy_jar() -> bytes:
    """kg.apc:jmeter-plugins-dummy:0.4 from Maven Central (cached)."""
    jars = fetch("jmeter-plugins-dummy", [("kg.apc", "jmeter-plugins-dummy", "0.4")],
                 cache_root() / "test-jmeter-plugins-dummy-0.4", transitive=False)  # fmt: skip
    return (jars / "jmeter-plugins-dummy-0.4.jar").read_bytes()


def test_a_server_takes_no_jars_unless_told(api: ApiServer) -> None:
    with api.client("alice") as c:
        project = c.post("/api/projects", json={"name": "jars", "group": "team-a"}).json()["id"]
        plan = c.post(f"/api/projects/{project}/plans", json={"name": "p"}).json()["id"]
        r = c.put(f"/api/plans/{plan}/files/dummy.jar", content=_dummy_jar())
        assert (r.status_code, r.json()["error"]["message"]) == (
            415, "dummy.jar: this server takes no .jar files in plans (JMeter would run their "
            "code; FILES__PLAN_JARS turns them on)")  # fmt: skip
        r = c.put(f"/api/plans/{plan}/files/plan.jmx", content=PLAN)
        assert r.status_code == 422
        assert f"element 'dummy' ({DUMMY}) needs a plugin" in r.json()["error"]["message"]


def test_a_plans_own_sampler_runs_on_every_engine(tmp_path: Path, kafka_bootstrap: str) -> None:
    assert PLAN.count(b'testname="dummy"') == 1
    load = Load(engines=2, jmx=PLAN, jars={"dummy.jar": _dummy_jar()})
    ran = run_on_local_engines(tmp_path, Bus(kafka_bootstrap), duration_s=5, test=load)
    assert ran.run["outcome"] == "finished", ran.run
    assert all("dummy" in labels for labels in ran.labels)  # JMeter loaded it on both
    assert ran.run["samples"] == ran.written == ran.stored > 0
