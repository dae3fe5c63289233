"""Projects, plans and files through the real API server, on SQLite and on PostgreSQL: round
trips, pagination, who may do what (every endpoint × owner / other group / admin / anonymous),
and uploads that must be refused without leaving anything behind."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api import ApiServer, start_api

pytestmark = pytest.mark.integration

JMX = (Path(__file__).parents[2] / "examples" / "two-samplers.jmx").read_bytes()
CSV = "user,password\nalice,ü-secret\nbob,x\n".encode()


def _project(api: ApiServer, who: str = "alice", group: str = "team-a") -> dict[str, object]:
    with api.client(who) as c:
        r = c.post("/api/projects", json={"name": f"p-{uuid.uuid4().hex[:6]}", "group": group})
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


def _plan(api: ApiServer, project_id: object) -> int:
    with api.client("alice") as c:
        r = c.post(f"/api/projects/{project_id}/plans", json={"name": "checkout"})
        assert r.status_code == 201, r.text
        plan_id: int = r.json()["id"]
        assert c.put(f"/api/plans/{plan_id}/files/plan.jmx", content=JMX).status_code == 200
    return plan_id


def test_projects_plans_and_files_round_trip(api: ApiServer) -> None:
    project = _project(api)
    assert project["group"] == "team-a"
    plan_id = _plan(api, project["id"])
    with api.client("alice") as c:
        up = c.put(f"/api/plans/{plan_id}/files/users.csv", content=CSV)
        assert up.json()["sha256"] == hashlib.sha256(CSV).hexdigest()
        assert up.json()["kind"] == "csv"
        plan = c.get(f"/api/plans/{plan_id}").json()
        assert [(f["name"], f["kind"], f["size_bytes"]) for f in plan["files"]] == [
            ("plan.jmx", "jmx", len(JMX)),
            ("users.csv", "csv", len(CSV)),
        ]
        down = c.get(f"/api/plans/{plan_id}/files/plan.jmx")
        assert down.content == JMX
        assert down.headers["x-content-sha256"] == hashlib.sha256(JMX).hexdigest()
        # Replacing a file keeps one row with the new content.
        assert c.put(f"/api/plans/{plan_id}/files/users.csv", content=b"a\n").status_code == 200
        files = c.get(f"/api/plans/{plan_id}/files").json()
        assert [(f["name"], f["size_bytes"]) for f in files] == [("plan.jmx", len(JMX)),
                                                                 ("users.csv", 2)]  # fmt: skip
        # A plan has one test plan.
        other = c.put(f"/api/plans/{plan_id}/files/other.jmx", content=JMX)
        assert other.status_code == 409
        assert other.json()["error"]["code"] == "conflict"
        assert c.delete(f"/api/plans/{plan_id}/files/users.csv").status_code == 204
        assert c.get(f"/api/plans/{plan_id}/files/users.csv").status_code == 404
        renamed = c.patch(f"/api/projects/{project['id']}", json={"name": "renamed"})
        assert renamed.json()["name"] == "renamed"
        assert c.delete(f"/api/projects/{project['id']}").status_code == 204
        assert c.get(f"/api/plans/{plan_id}").status_code == 404  # gone with its project


def test_lists_are_paginated_and_show_only_the_callers_projects(api: ApiServer) -> None:
    mine = {_project(api)["id"] for _ in range(3)}
    theirs = _project(api, "bob", "team-b")["id"]
    with api.client("alice") as c:
        first = c.get("/api/projects", params={"limit": 2}).json()
        total = first["total"]
        rest = c.get("/api/projects", params={"limit": 200, "offset": 2}).json()
    seen = [p["id"] for p in first["items"] + rest["items"]]
    assert len(first["items"]) == 2
    assert len(seen) == total == len(set(seen))
    assert mine <= set(seen)
    assert theirs not in seen
    with api.client("root") as c:
        assert theirs in {p["id"] for p in c.get("/api/projects?limit=200").json()["items"]}
    with api.client("alice") as c:
        bad = c.get("/api/projects", params={"limit": 0})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid"
    assert bad.json()["error"]["message"].startswith("query.limit:")


def test_a_wrong_token_is_refused(api: ApiServer) -> None:
    with httpx.Client(base_url=api.base, headers={"Authorization": "Bearer shb_nope"}) as c:
        r = c.get("/api/projects")
    assert r.status_code == 401
    assert r.json()["error"] == {
        "code": "unauthenticated",
        "message": "unknown, revoked or expired API token or session",
        "details": None,
    }
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("name", "content", "status", "code"),
    [
        ("..%2F..%2Fetc.csv", CSV, 404, "not_found"),  # never reaches the route
        ("..etc.csv", CSV, 422, "invalid"),
        (".hidden.csv", CSV, 422, "invalid"),
        ("run.sh", b"#!/bin/sh\n", 415, "unsupported_file"),
        ("big.csv", b"x" * 100_001, 413, "too_large"),
        ("latin1.csv", "é".encode("latin-1"), 422, "invalid"),
        ("notxml.jmx", b"<jmeterTestPlan", 422, "invalid"),
        ("other.jmx", b"<project/>", 422, "invalid"),
        (
            "bomb.jmx",
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>'
            b"<jmeterTestPlan>&b;</jmeterTestPlan>",
            422,
            "invalid",
        ),
    ],
)
def test_bad_uploads_are_refused_and_leave_nothing(
    api: ApiServer, name: str, content: bytes, status: int, code: str
) -> None:
    project = _project(api)
    with api.client("alice") as c:
        r = c.post(f"/api/projects/{project['id']}/plans", json={"name": "p"})
        plan = r.json()["id"]
        r = c.put(f"/api/plans/{plan}/files/{name}", content=content)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
        assert c.get(f"/api/plans/{plan}/files").json() == []
    files = api.log.parent / "files" / "plans" / str(plan)
    assert not files.exists() or list(files.iterdir()) == []


def test_an_oversize_upload_without_a_length_is_cut_off(api: ApiServer) -> None:
    project = _project(api)
    with api.client("alice") as c:
        plan = c.post(f"/api/projects/{project['id']}/plans", json={"name": "p"}).json()["id"]

        def chunks() -> Iterator[bytes]:
            for _ in range(30):
                yield b"y" * 10_000

        r = c.put(f"/api/plans/{plan}/files/big.csv", content=chunks())  # chunked: no length
        assert r.status_code == 413
        assert c.get(f"/api/plans/{plan}/files").json() == []


def test_the_openapi_document_lists_the_routes(api: ApiServer) -> None:
    with api.client("alice") as c:
        spec = c.get("/openapi.json").json()
    assert {"/api/projects", "/api/plans/{plan_id}/files/{name}"} <= set(spec["paths"])
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def test_no_auth_mode_makes_every_request_the_local_admin(
    tmp_path: Path,
) -> None:
    server = start_api(tmp_path, f"sqlite:///{tmp_path / 'meta.db'}", AUTH__MODE="none")
    try:
        with httpx.Client(base_url=server.base) as c:
            assert c.get("/api/me").json() == {"name": "local", "groups": [], "is_admin": True}
            r = c.post("/api/projects", json={"name": "x", "group": "local"})
            assert r.status_code == 201  # an admin's project may found its group
            assert c.get(f"/api/projects/{r.json()['id']}").json()["group"] == "local"
    finally:
        server.stop()


def test_names_are_unique_where_they_address_something(api: ApiServer) -> None:
    """A project's name in its group, a plan's and a collection's in their project: the CLI and
    config files address them by name. Another group may use the same names."""
    project = _project(api)
    _plan(api, project["id"])
    with api.client("alice") as c:
        again = c.post("/api/projects", json={"name": project["name"], "group": "team-a"})
        assert again.status_code == 409
        assert again.json()["error"]["message"] == (
            f"a project named {project['name']!r} exists already in its group (id {project['id']})"
        )
        assert c.post(f"/api/projects/{project['id']}/plans",
                      json={"name": "checkout"}).status_code == 409  # fmt: skip
        other = c.post(f"/api/projects/{project['id']}/plans", json={"name": "other"}).json()
        assert c.patch(f"/api/plans/{other['id']}", json={"name": "checkout"}).status_code == 409
        assert c.patch(f"/api/plans/{other['id']}", json={"name": "other"}).status_code == 200
        made = [c.post(f"/api/projects/{project['id']}/collections", json={"name": "run"})
                for _ in range(2)]  # fmt: skip
        assert [r.status_code for r in made] == [201, 409]
    with api.client("bob") as c:
        r = c.post("/api/projects", json={"name": project["name"], "group": "team-b"})
        assert r.status_code == 201


_PLUGIN_PLAN = JMX.replace(
    b'<ThreadGroup guiclass="ThreadGroupGui" testclass="ThreadGroup" testname="users">',
    b'<com.blazemeter.jmeter.threads.concurrency.ConcurrencyThreadGroup testname="users">',
).replace(b"</ThreadGroup>", b"</com.blazemeter.jmeter.threads.concurrency.ConcurrencyThreadGroup>")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            _PLUGIN_PLAN.replace(
                b"${__P(target.port,8000)}", b"${__P(target.port,${__strLen(ab)})}"
            ),
            None,
        ),  # a shipped plugin and a function of the pack: taken
        (
            JMX.replace(b'testname="GET /items', b'testname="${__upperCase(get)} /items'),
            "plan.jmx: function __upperCase in '${__upperCase(get)} /items, \"all\"' is not one "
            "JMeter 5.6.3 or the shipped plugins define: it would be sent as text",
        ),
        (
            JMX.replace(
                b'testclass="ThreadGroup" testname="users">',
                b'testclass="ThreadGroup" testname="users"><kg.apc.jmeter.samplers.DummySampler '
                b'testname="dummy"/>',
            ),
            "plan.jmx: element 'dummy' (kg.apc.jmeter.samplers.DummySampler) needs a plugin the "
            "engines do not have (they have the Custom Thread Groups, the functions pack and the "
            "Throughput Shaping Timer)",
        ),
        (
            b'<jmeterTestPlan><hashTree><TestPlan testname="t"/><hashTree/></hashTree>'
            b"</jmeterTestPlan>",
            "plan.jmx: no thread group at its top level: it would run nothing",
        ),
    ],
)
def test_a_plan_the_engines_cannot_run_is_refused_at_upload_saying_what(
    api: ApiServer, content: bytes, message: str | None
) -> None:
    project = _project(api)
    plan = _plan_without_files(api, project["id"])
    with api.client("alice") as c:
        r = c.put(f"/api/plans/{plan}/files/plan.jmx", content=content)
    if message is None:
        assert r.status_code == 200, r.text
    else:
        assert (r.status_code, r.json()["error"]["message"]) == (422, message)


def _plan_without_files(api: ApiServer, project_id: object) -> int:
    with api.client("alice") as c:
        plan: int = c.post(f"/api/projects/{project_id}/plans", json={"name": "p"}).json()["id"]
    return plan
