"""A collection's secret reaches every engine's JMeter as a property, and nothing else: not an
answer of the API, not a log, not the results, not the commands topic every engine reads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.api import JMX, ApiServer, make_collection
from tests.support.kafka import read_all
from tests.support.local_runs import Bus, Load, run_on_local_engines
from wire import Topic, topic_name

pytestmark = pytest.mark.integration

SECRET = "pa55-Wörd:=#!x"  # what a properties file must escape, and more
#: The first sampler's label shows the secret's length: it arrived, and it is not printed.
PLAN = JMX.replace(b'"GET /items, &quot;all&quot;"', b'"GET ${__strLen(${__P(db.password,)})}"')


def test_a_secret_reaches_the_engines_and_nothing_else(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    load = Load(engines=2, jmx=PLAN, secrets={"db.password": SECRET},
                properties={"db.password": "overridden"})  # fmt: skip
    ran = run_on_local_engines(tmp_path, Bus(kafka_bootstrap), duration_s=5, test=load)
    assert ran.run["outcome"] == "finished", ran.run
    assert len(ran.labels) == 2
    for labels in ran.labels:  # every engine had it, over a property (a slow one may not POST)
        assert f"GET {len(SECRET)}" in labels
        assert labels <= {f"GET {len(SECRET)}", 'POST /login, "json"'}
    assert ran.leaks == []
    commands = asyncio.run(read_all(kafka_bootstrap, topic_name(Topic.COMMANDS)))
    assert commands
    assert not any(SECRET.encode() in (r.value or b"") for r in commands)


def test_secrets_are_the_owners_and_never_shown(api: ApiServer) -> None:
    collection, _ = make_collection(api, duration_s=60)
    path = f"/api/collections/{collection}/secrets"
    with api.client("alice") as c:
        r = c.put(f"{path}/api.key", json={"value": SECRET})
        assert r.status_code == 200
        assert SECRET not in r.text
        assert [s["name"] for s in c.get(path).json()] == ["api.key"]
        assert c.put(f"{path}/bad name", json={"value": "x"}).status_code == 422
        assert c.put(f"{path}/empty", json={"value": ""}).status_code == 422
    with api.client("bob") as c:  # another group's
        assert c.get(path).status_code == 404
        assert c.put(f"{path}/api.key", json={"value": "mine"}).status_code == 404
    with api.client(None) as c:  # nor an engine's without a run in progress
        assert c.get("/api/engine-secrets/run-000000000000").status_code == 401
    with api.client("alice") as c:
        assert c.delete(f"{path}/api.key").status_code == 204
        assert c.get(path).json() == []
        assert c.delete(f"{path}/api.key").status_code == 404
