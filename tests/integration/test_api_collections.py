"""Collections and their ``multi-test`` YAML config through the real API server, on SQLite and
on PostgreSQL: import, export, Shibuya's validation with every problem named, criteria checked,
and the database refusing a second active run of a collection."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from tests.support.api import ApiServer

pytestmark = pytest.mark.integration

JMX = (Path(__file__).parents[2] / "examples" / "two-samplers.jmx").read_bytes()


def _setup(api: ApiServer) -> tuple[int, list[int], int]:
    """A project of alice's with two plans and an empty collection."""
    with api.client("alice") as c:
        project = c.post("/api/projects", json={"name": f"p-{uuid.uuid4().hex[:6]}",
                                                "group": "team-a"}).json()["id"]  # fmt: skip
        plans = []
        for name in ("browse", "buy"):
            plan = c.post(f"/api/projects/{project}/plans", json={"name": name}).json()["id"]
            c.put(f"/api/plans/{plan}/files/plan.jmx", content=JMX)
            plans.append(plan)
        body = {"name": "checkout", "thresholds": ["error_rate > 5% over 60s"]}
        r = c.post(f"/api/projects/{project}/collections", json=body)
        assert r.status_code == 201, r.text
    return project, plans, r.json()["id"]


def _config(project: int, collection: int, tests: list[dict[str, object]], **top: object) -> str:
    doc = {"multi-test": {"name": "checkout", "projectid": project, "collectionid": collection,
                          "csv_split": False, "tests": tests, **top}}  # fmt: skip
    return yaml.safe_dump(doc)


def test_a_config_imports_and_exports_shibuyas_format(api: ApiServer) -> None:
    project, (browse, buy), collection = _setup(api)
    config = _config(
        project, collection,
        [{"name": "browse", "testid": browse, "concurrency": 50, "rampup": 30, "engines": 2,
          "duration": 10},
         {"name": "buy", "testid": buy, "concurrency": 10, "rampup": 0, "engines": 1,
          "duration_s": 90, "csv_split": True}],
        thresholds=["p95(elapsed) > 500ms for 30s"],
    )  # fmt: skip
    with api.client("alice") as c:
        r = c.put(f"/api/collections/{collection}/config", content=config)
        assert r.status_code == 200, r.text
        out = r.json()
        assert [(p["plan_id"], p["engines"], p["threads_per_engine"], p["ramp_up_s"],
                 p["duration_s"], p["csv_split"]) for p in out["plans"]] == [
            (browse, 2, 50, 30, 600, False), (buy, 1, 10, 0, 90, True)]  # fmt: skip
        assert (out["engines"], out["virtual_users"]) == (3, 110)
        assert out["thresholds"] == ["p95(elapsed) > 500ms for 30s"]
        exported = c.get(f"/api/collections/{collection}/config")
        assert exported.headers["content-type"].startswith("application/yaml")
        again = c.put(f"/api/collections/{collection}/config", content=exported.text)
        assert again.json()["plans"] == out["plans"]  # export → import is the identity
        tests = yaml.safe_load(exported.text)["multi-test"]["tests"]
        assert tests[0]["duration"] == 10  # minutes, as Shibuya writes them
        assert tests[1]["duration_s"] == 90
        # An import replaces the plans: one left.
        one = _config(project, collection, [{"testid": buy, "concurrency": 1, "engines": 1,
                                              "duration": 1}])  # fmt: skip
        assert [p["plan_id"] for p in c.put(f"/api/collections/{collection}/config",
                                            content=one).json()["plans"]] == [buy]  # fmt: skip


def test_a_bad_config_is_refused_with_every_problem_named(api: ApiServer) -> None:
    project, (browse, _), collection = _setup(api)
    with api.client("bob") as c:
        bob_project = c.post("/api/projects", json={"name": "b", "group": "team-b"}).json()["id"]
        bob_plan = c.post(f"/api/projects/{bob_project}/plans", json={"name": "x"}).json()["id"]
    config = _config(
        project + 1000, collection,
        [{"testid": browse, "concurrency": 0, "engines": 2, "duration": 1},
         {"testid": bob_plan, "concurrency": 1, "engines": 1, "duration": "ten"},
         {"testid": browse, "concurrency": 1, "engines": 1, "duration": 1}],
        thresholds=["p95(elapsed) > 5 parsecs for 3s"],
    )  # fmt: skip
    with api.client("alice") as c:
        r = c.put(f"/api/collections/{collection}/config", content=config)
        assert r.status_code == 422
        problems = r.json()["error"]["details"]
        assert problems[0].startswith("thresholds[0]: criterion 'p95(elapsed) > 5 parsecs for 3s'")
        assert problems[1:] == [
            "tests[0].concurrency: 1 to 5,000, not 0",
            "tests[1].duration: a whole number is needed, not 'ten'",
            f"tests[2].testid: plan {browse} is listed twice",
        ]
        # Shape right, facts wrong: another project's plan, the wrong ids, too many engines.
        tests = [{"testid": plan, "concurrency": 1, "engines": 60, "duration": 1}
                 for plan in (bob_plan, browse)]  # fmt: skip
        wrong = _config(project + 1000, collection + 1000, tests)
        r = c.put(f"/api/collections/{collection}/config", content=wrong)
        assert r.json()["error"]["details"] == [
            f"collectionid: {collection + 1000} is not this collection ({collection})",
            f"projectid: {project + 1000} is not this collection's ({project})",
            f"tests[0].testid: plan {bob_plan} is not in project {project}",
            "tests: 120 engines in all, more than the limit of 100",
        ]
        assert c.put(f"/api/collections/{collection}/config", content="- [").status_code == 422
        assert c.get(f"/api/collections/{collection}").json()["plans"] == []  # unchanged


def test_criteria_are_checked_where_they_are_set(api: ApiServer) -> None:
    _, _, collection = _setup(api)
    with api.client("alice") as c:
        r = c.patch(f"/api/collections/{collection}", json={"thresholds": ["rps < ten for 5s"]})
    assert r.status_code == 422
    assert "rps < ten for 5s" in r.json()["error"]["message"]


def test_other_groups_cannot_see_or_change_a_collection(api: ApiServer) -> None:
    _, _, collection = _setup(api)
    for who, status in (("bob", 404), (None, 401), ("root", 200)):
        with api.client(who) as c:
            assert c.get(f"/api/collections/{collection}").status_code == status
            assert c.get(f"/api/collections/{collection}/config").status_code == status
            r = c.patch(f"/api/collections/{collection}", json={"name": "mine"})
            assert r.status_code == status


def test_the_database_allows_one_active_run_per_collection(api: ApiServer) -> None:
    """Two replicas racing to start a run: the second insert fails in the database itself."""
    _, _, collection = _setup(api)
    engine = create_engine(api.database_url)
    now = datetime.now(UTC)
    insert = text("INSERT INTO runs (id, collection_id, started_at, state, reason, thresholds, "
                  "verdicts) VALUES (:id, :c, :t, 'deploying', '', '[]', '{}')")  # fmt: skip
    try:
        with engine.begin() as conn:
            conn.execute(insert, {"id": f"r1-{collection}", "c": collection, "t": now})
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(insert, {"id": f"r2-{collection}", "c": collection, "t": now})
        with engine.begin() as conn:  # once the first has ended, another may start
            conn.execute(text("UPDATE runs SET ended_at = :t WHERE id = :id"),
                         {"t": now, "id": f"r1-{collection}"})  # fmt: skip
            conn.execute(insert, {"id": f"r2-{collection}", "c": collection, "t": now})
        with api.client("alice") as c:  # and the collection cannot be deleted while one runs
            r = c.delete(f"/api/collections/{collection}")
        assert r.status_code == 409
        assert "run in progress" in r.json()["error"]["message"]
    finally:
        engine.dispose()


def test_runs_of_a_collection_are_the_owners_only(api: ApiServer) -> None:
    _, _, collection = _setup(api)
    for who, status in (("bob", 404), (None, 401)):
        with api.client(who) as c:
            assert c.post(f"/api/collections/{collection}/runs").status_code == status
            assert c.get(f"/api/collections/{collection}/runs").status_code == status
            assert c.get("/api/runs/run-0123456789ab").status_code == status
            assert c.post("/api/runs/run-0123456789ab/stop", json={}).status_code == status
    with api.client("alice") as c:
        assert c.get(f"/api/collections/{collection}/runs").json()["items"] == []
        r = c.post(f"/api/collections/{collection}/runs")  # no plans yet: nothing to run
        assert (r.status_code, r.json()["error"]["code"]) == (409, "conflict")
        assert c.get("/api/runs/not-a-run-id").status_code == 422
    with api.client(None) as c:  # engines' file route: a run token, never a user's
        r = c.get("/api/engine-files/run-0123456789ab/1/plan.jmx",
                  headers={"Authorization": f"Bearer {api.tokens['root']}"})  # fmt: skip
        assert r.status_code == 401


def test_a_csv_split_among_more_engines_than_its_rows_is_warned_of(
    api: ApiServer, tmp_path: Path
) -> None:
    project, (browse, buy), collection = _setup(api)
    users = b'user,address\nann,"1 Main St\nFlat 2"\nbob,x\n'  # 2 records; one spans 2 lines
    with api.client("alice") as c:
        for plan in (browse, buy):
            assert c.put(f"/api/plans/{plan}/files/users.csv", content=users).status_code == 200
        config = _config(project, collection, [
            {"testid": browse, "concurrency": 1, "engines": 3, "duration": 1, "csv_split": True},
            {"testid": buy, "concurrency": 1, "engines": 5, "duration": 1}])  # fmt: skip
        out = c.put(f"/api/collections/{collection}/config", content=config).json()
        assert out["warnings"] == [f"plan {browse}: users.csv has 2 data rows for 3 engines; 1 "
                                   "engines get its header only (fewer engines, more rows, or "
                                   "csv_split off)"]  # fmt: skip
        assert c.get(f"/api/collections/{collection}").json()["warnings"] == out["warnings"]
        more = users + b"cy,y\n"
        assert c.put(f"/api/plans/{browse}/files/users.csv", content=more).status_code == 200
        assert c.get(f"/api/collections/{collection}").json()["warnings"] == []
    path = tmp_path / "c.yaml"
    path.write_text(config.replace("engines: 3", "engines: 4"))
    env = {**os.environ, "SHIBUYA_URL": api.base, "SHIBUYA_TOKEN": api.tokens["alice"]}
    cli = subprocess.run([sys.executable, "-m", "shibuya", "apply", "-f", str(path)],
                         capture_output=True, text=True, env=env, check=False)  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert "warning: plan" in cli.stderr
    assert "3 data rows for 4 engines" in cli.stderr
