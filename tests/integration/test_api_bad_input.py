"""The corpus of bad input that once got a server error, a huge answer or a frozen API: each gets
a bounded 4xx with a short message, on SQLite and on PostgreSQL, and the API answers on."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import yaml

from tests.support.api import JMX, ApiServer, make_collection

pytestmark = pytest.mark.integration

#: An answer says what is wrong in words; it never echoes a whole input back.
MAX_ANSWER = 4096
#: 500 bytes of YAML that expand to 9^4 items (one level more, and so on: memory runs out).
BOMB = (
    b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c]\n"
)


def _config(collection: int, project: int, plan: Any, **test: Any) -> bytes:
    doc = {"multi-test": {"name": "c", "projectid": project, "collectionid": collection,
                          "tests": [{"testid": plan, "concurrency": 1, "engines": 1,
                                     "duration_s": 5, **test}]}}  # fmt: skip
    return yaml.safe_dump(doc).encode()


def _project_of(c: httpx.Client, collection: int) -> int:
    return int(c.get(f"/api/collections/{collection}").json()["project_id"])


def test_bad_input_gets_a_bounded_4xx(api: ApiServer) -> None:  # fmt: skip
    collection, plan = make_collection(api, duration_s=5)
    with api.client("alice") as c:
        project = _project_of(c, collection)
        run = "run-000000000000"  # the header is checked first
        cases: list[tuple[str, httpx.Response, int]] = [
            (
                "usage near year 1",
                c.get("/api/usage", params={"until": "0001-01-05T00:00:00Z"}),
                422,
            ),
            (
                "Last-Event-ID of other digits",
                c.get(f"/api/runs/{run}/live", headers={b"Last-Event-ID": "²³".encode()}),
                422,
            ),
            (
                "Last-Event-ID past 2^32",
                c.get(f"/api/runs/{run}/live", headers={"Last-Event-ID": str(2**32)}),
                422,
            ),
            (
                "a bad JSON escape in a label",
                c.patch(
                    f"/api/collections/{collection}",
                    json={"thresholds": ['p95(elapsed) on "a\\q" > 1s for 5s']},
                ),
                422,
            ),
            (
                "a criterion of 800,000 characters",
                c.patch(
                    f"/api/collections/{collection}",
                    json={"thresholds": ["rps < 1 for 5s" + " " * 800_000]},
                ),
                422,
            ),
            (
                "10,000 criteria",
                c.patch(
                    f"/api/collections/{collection}",
                    json={"thresholds": ["rps < 1 for 5s"] * 10_000},
                ),
                422,
            ),
            (
                "deeply nested YAML",
                c.put(
                    f"/api/collections/{collection}/config",
                    content=b"a: " + b"[" * 5000 + b"]" * 5000,
                ),
                422,
            ),
            (
                "a YAML alias bomb",
                c.put(
                    f"/api/collections/{collection}/config",
                    content=BOMB,
                ),
                422,
            ),
            (
                "an id above int64",
                c.put(
                    f"/api/collections/{collection}/config",
                    content=_config(collection, project, 2**70),
                ),
                422,
            ),
            (
                "engines above int32",
                c.put(
                    f"/api/collections/{collection}/config",
                    content=_config(collection, project, plan, engines=2**40),
                ),
                422,
            ),
            (
                "10^8 threads for 10^9 minutes",
                c.put(
                    f"/api/collections/{collection}/config",
                    content=_config(collection, project, plan, concurrency=10**8, duration=10**9),
                ),
                422,
            ),
            (
                "a 3 MiB JSON body",
                c.post(
                    "/api/projects",
                    content=json.dumps({"name": "x" * (3 * 2**20), "group": "team-a"}),
                    headers={"Content-Type": "application/json"},
                ),
                413,
            ),
            (
                "a name with a bidi override",
                c.post("/api/projects", json={"name": "shop\u202etxt.exe", "group": "team-a"}),
                422,
            ),
            (
                "a name with a zero-width space",
                c.post("/api/projects", json={"name": "sh\u200bop", "group": "team-a"}),
                422,
            ),
            (
                "a name with a C1 control",
                c.post("/api/projects", json={"name": "sh\x85op", "group": "team-a"}),
                422,
            ),
            (
                "a JMX with a DOCTYPE",
                c.put(
                    f"/api/plans/{plan}/files/plan.jmx",
                    content=(
                        b'<?xml version="1.0"?><!DOCTYPE j [<!ENTITY e "x">]><jmeterTestPlan/>'
                    ),
                ),
                422,
            ),
            (
                "a JMX 500 levels deep",
                c.put(
                    f"/api/plans/{plan}/files/plan.jmx",
                    content=(
                        b"<jmeterTestPlan>" + b"<a>" * 500 + b"</a>" * 500 + b"</jmeterTestPlan>"
                    ),
                ),
                422,
            ),
        ]
        for what, answer, status in cases:
            assert answer.status_code == status, (what, answer.status_code, answer.text[:500])
            assert len(answer.content) < MAX_ANSWER, (what, len(answer.content))
            assert answer.json()["error"]["code"] in ("invalid", "too_large"), what
        assert c.put(f"/api/plans/{plan}/files/plan.jmx", content=JMX).status_code == 200
        assert c.get("/api/me").status_code == 200  # and it answers on
