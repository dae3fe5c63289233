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
SHOWN = "region=${__P(region,none)} tier=${__P(tier,none)} zone=${__P(zone,none)}"
LABELLED = JMX.replace(
    b'testname="GET /items, &quot;all&quot;"', f'testname="GET {SHOWN}"'.encode()
)
LABELLED = LABELLED.replace(b'testname="POST /login, &quot;json&quot;"',
                            f'testname="POST {SHOWN}"'.encode())  # fmt: skip
ZONE = 'eu-1 ü = "a:b" #c \\ d'  # what a properties file must escape, and more


def test_run_properties_override_the_plans_which_override_the_collections(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    assert LABELLED.count(b"region=${__P(region,none)}") == 2
    test = Load(
        engines=3,
        jmx=LABELLED,
        properties={"region": "collection", "tier": "collection", "zone": "collection"},
        plan_properties={"tier": "plan", "zone": "plan"},
        run_properties={"zone": ZONE},
    )
    ran = run_on_local_engines(tmp_path, Bus(kafka_bootstrap), duration_s=4, test=test)
    assert ran.run["outcome"] == "finished", ran.run
    assert ran.run["properties"] == {"zone": ZONE}  # the run records its own
    shown = f"region=collection tier=plan zone={ZONE}"
    assert ran.labels == [{f"GET {shown}", f"POST {shown}"}] * 3  # every engine
    assert ran.run["samples"] == ran.written == ran.stored > 0  # stream, JTL files, ClickHouse
