"""JMeter properties from the collection, its plan and the run reach every engine of a real run
(real JMeter, sandboxed local engines), each level over the one before, any character intact;
and ClickHouse holds exactly what the engines wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.api import JMX
from tests.support.local_runs import Bus, Load, run_on_local_engines

pytestmark = pytest.mark.integration

#: Each sampler's label shows the three properties as JMeter saw them.
SHOWN = ("region=${__P(region,none)} tier=${__P(tier,none)} zone=${__P(zone,none)} "
         "stage=${__env(STAGE)} shard=${__env(SHARD)}")  # fmt: skip
LABELLED = JMX.replace(
    b'testname="GET /items, &quot;all&quot;"', f'testname="GET {SHOWN}"'.encode()
)
LABELLED = LABELLED.replace(b'testname="POST /login, &quot;json&quot;"',
                            f'testname="POST {SHOWN}"'.encode())  # fmt: skip
ZONE = 'eu-1 ü = "a:b" #c \\ d'  # what a properties file must escape, and more


def test_run_properties_and_env_override_the_plans_which_override_the_collections(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    assert LABELLED.count(b"region=${__P(region,none)}") == 2
    test = Load(
        engines=3,
        jmx=LABELLED,
        properties={"region": "collection", "tier": "collection", "zone": "collection"},
        plan_properties={"tier": "plan", "zone": "plan"},
        run_properties={"zone": ZONE},
        env={"STAGE": "collection", "SHARD": "collection"},
        plan_env={"SHARD": "plan"},
        run_env={"STAGE": "run"},
    )
    ran = run_on_local_engines(tmp_path, Bus(kafka_bootstrap), duration_s=6, test=test)
    assert ran.run["outcome"] == "finished", ran.run
    assert ran.run["properties"] == {"zone": ZONE}  # the run records its own
    assert ran.run["env"] == {"STAGE": "run"}
    shown = f"region=collection tier=plan zone={ZONE} stage=run shard=plan"
    assert len(ran.labels) == 3
    for labels in ran.labels:  # every engine ran with them (a slow one may not reach POST)
        assert f"GET {shown}" in labels
        assert labels <= {f"GET {shown}", f"POST {shown}"}
    assert ran.run["samples"] == ran.written == ran.stored > 0  # stream, JTL files, ClickHouse
