"""Every endpoint of the API × owner / other group / admin / anonymous, on SQLite and
PostgreSQL; and a check that the matrix names every route the OpenAPI document has, so a new
route cannot go unchecked."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, text

from tests.support.api import JMX, ApiServer

pytestmark = pytest.mark.integration

# (method, path, body, what the owner and an admin get). Another group gets 404, anonymous 401.
# {run} has ended; {empty} is a collection without plans. Deletions come last.
MATRIX: list[tuple[str, str, object, int]] = [
    ("GET", "/api/projects/{project}", None, 200),
    ("PATCH", "/api/projects/{project}", {"name": "x-{project}"}, 200),  # names are unique
    ("POST", "/api/projects/{project}/plans", {"name": "x"}, 201),
    ("GET", "/api/projects/{project}/plans", None, 200),
    ("GET", "/api/plans/{plan}", None, 200),
    ("PATCH", "/api/plans/{plan}", {"name": "y"}, 200),
    ("GET", "/api/plans/{plan}/files", None, 200),
    ("PUT", "/api/plans/{plan}/files/data.csv", b"a,b\n", 200),
    ("GET", "/api/plans/{plan}/files/plan.jmx", None, 200),
    ("DELETE", "/api/plans/{plan}/files/data.csv", None, 204),
    ("POST", "/api/projects/{project}/collections", {"name": "new"}, 201),
    ("GET", "/api/projects/{project}/collections", None, 200),
    ("GET", "/api/collections/{collection}", None, 200),
    ("PATCH", "/api/collections/{collection}", {"name": "d"}, 200),
    ("GET", "/api/collections/{collection}/config", None, 200),
    ("POST", "/api/collections/{empty}/runs", None, 409),  # no plans: nothing to run
    ("PUT", "/api/collections/{empty}/config", "config", 200),
    ("GET", "/api/collections/{collection}/runs", None, 200),
    ("GET", "/api/runs/{run}", None, 200),
    ("POST", "/api/runs/{run}/stop", {}, 409),  # it has ended
    ("GET", "/api/runs/{run}/series", None, 200),
    ("GET", "/api/runs/{run}/report", None, 200),
    ("GET", "/api/runs/{run}/report.html", None, 200),
    ("GET", "/api/runs/{run}/compare/{run}", None, 200),
    ("GET", "/api/runs/{run}/live", None, 200),
    ("POST", "/api/collections/{collection}/deploy", None, 201),
    ("GET", "/api/collections/{collection}/status", None, 200),
    ("GET", "/api/collections/{collection}/launches", None, 200),
    ("GET", "/api/collections/{collection}/engines/{plan}/0/logs", None, 404),  # external
    ("POST", "/api/collections/{collection}/purge", {}, 200),
    ("POST", "/api/collections/{collection}/engine-tokens", None, 201),
    ("DELETE", "/api/collections/{collection}/engine-tokens", None, 200),
    ("PUT", "/api/collections/{collection}/secrets/db.password", {"value": "s3cret"}, 200),
    ("GET", "/api/collections/{collection}/secrets", None, 200),
    ("DELETE", "/api/collections/{collection}/secrets/db.password", None, 204),
    ("DELETE", "/api/collections/{collection}", None, 204),
    ("DELETE", "/api/collections/{empty}", None, 204),
    ("DELETE", "/api/plans/{plan}", None, 204),
    ("DELETE", "/api/projects/{project}", None, 204),
]
#: Routes every authenticated caller may call (they answer with the caller's own things, or no
#: one's: health), and the engines' routes (an engine token, never a user's:
#: tests/integration/test_api_runs.py, test_secrets.py).
OPEN = {("GET", "/api/me"), ("GET", "/api/projects"), ("POST", "/api/projects"),
        ("GET", "/api/usage"), ("GET", "/api/running"), ("GET", "/api/health"),
        ("GET", "/api/engine-files/{run_id}/{plan_id}/{name}"),
        ("GET", "/api/engine-secrets/{run_id}")}  # fmt: skip


def _setup(api: ApiServer) -> dict[str, object]:
    with api.client("alice") as c:
        project = c.post("/api/projects", json={"name": f"p-{uuid.uuid4().hex[:6]}",
                                                "group": "team-a"}).json()["id"]  # fmt: skip
        plan = c.post(f"/api/projects/{project}/plans", json={"name": "p"}).json()["id"]
        assert c.put(f"/api/plans/{plan}/files/plan.jmx", content=JMX).status_code == 200
        ids = {}
        for name in ("collection", "empty"):
            ids[name] = c.post(f"/api/projects/{project}/collections",
                               json={"name": name}).json()["id"]  # fmt: skip
        config = {"multi-test": {"name": "c", "projectid": project,
                                 "collectionid": ids["collection"],
                                 "tests": [{"testid": plan, "concurrency": 2, "engines": 1,
                                            "duration_s": 30}]}}  # fmt: skip
        r = c.put(f"/api/collections/{ids['collection']}/config", content=yaml.safe_dump(config))
        assert r.status_code == 200, r.text
    run = f"run-{uuid.uuid4().hex[:12]}"
    engine = create_engine(api.database_url)
    try:
        with engine.begin() as conn:  # a run that has ended (it is the stream that ends runs)
            insert = text(
                "INSERT INTO runs (id, collection_id, started_at, ended_at, state, outcome, "
                "reason, thresholds, verdicts) VALUES (:id, :c, :t, :t, 'finished', 'finished', "
                "'', '[]', '{}')")  # fmt: skip
            conn.execute(insert, {"id": run, "c": ids["collection"], "t": datetime.now(UTC)})
    finally:
        engine.dispose()
    empty_config = {"multi-test": {"name": "e", "projectid": project, "collectionid": ids["empty"],
                                   "tests": [{"testid": plan, "concurrency": 1, "engines": 1,
                                              "duration_s": 5}]}}  # fmt: skip
    return {"project": project, "plan": plan, "run": run, **ids,
            "config": yaml.safe_dump(empty_config).encode()}  # fmt: skip


@pytest.mark.parametrize("who", ["alice", "bob", "root", None])
def test_every_endpoint_checks_who_calls_and_what_they_own(api: ApiServer, who: str | None) -> None:
    ids = _setup(api)
    with api.client(who) as c:
        for method, template, body, ok in MATRIX:
            url = template.format(**ids)
            if body == "config":
                body = ids["config"]
            elif isinstance(body, dict):
                body = {k: v.format(**ids) for k, v in body.items()}
            kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
            r = c.request(method, url, **kwargs) if body is not None else c.request(method, url)
            expected = {"alice": ok, "root": ok, "bob": 404, None: 401}[who]
            assert r.status_code == expected, (who, method, url, r.text)
            if r.status_code >= 400:
                assert set(r.json()["error"]) == {"code", "message", "details"}
        # Creating a project in a group one is not in.
        r = c.post("/api/projects", json={"name": f"x-{who}", "group": "team-a"})
        assert r.status_code == {"alice": 201, "root": 201, "bob": 403, None: 401}[who]
        for path in ("/api/me", "/api/usage", "/api/running", "/api/projects"):
            assert c.get(path).status_code == (401 if who is None else 200)
    if who is not None:
        with api.client(who) as c:
            assert c.get("/api/me").json()["name"] == who


def test_the_openapi_document_is_for_users_only(api: ApiServer) -> None:
    with httpx.Client(base_url=api.base) as c:
        assert c.get("/openapi.json").status_code == 401
        assert [c.get(page).status_code for page in ("/docs", "/redoc")] == [404, 404]
    with api.client("bob") as c:
        assert c.get("/openapi.json").json()["info"]["title"] == "Shibuya control API"


def test_the_matrix_covers_every_route(api: ApiServer) -> None:
    with api.client("alice") as c:
        spec = c.get("/openapi.json").json()
    called = [(m, t) for m, t, _, _ in MATRIX]
    unchecked = set()
    for path, ops in spec["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$")
        for method in ops:
            m = method.upper()
            if (m, path) not in OPEN and not any(
                cm == m and pattern.match(t) for cm, t in called
            ):  # fmt: skip
                unchecked.add((m, path))
    assert unchecked == set()
