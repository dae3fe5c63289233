"""The CLI against the real API, on SQLite and PostgreSQL: config as code applied, changed and
applied again — counting the API's writes — and everything addressed by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.api import JMX, ApiServer

pytestmark = pytest.mark.integration

SHOP = """
project: shop
group: team-a
plans:
  - {name: browse, files: [browse.jmx, users.csv]}
collections:
  - name: checkout
    criteria: ["error_rate > 5% over 10s"]
    plans:
      - {plan: browse, engines: 2, threads: 5, duration: 1m, csv_split: true}
"""


def shibuya(api: ApiServer, who: str, *args: str, cwd: Path | None = None) -> tuple[int, str]:
    env = {**os.environ, "SHIBUYA_URL": api.base, "SHIBUYA_TOKEN": api.tokens[who],
           "COLUMNS": "200"}  # fmt: skip
    out = subprocess.run([sys.executable, "-m", "shibuya", *args], env=env, cwd=cwd,
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    return out.returncode, out.stdout + out.stderr


def writes(api: ApiServer) -> int:
    """Requests the API answered that could write: every method but GET."""
    with urllib.request.urlopen(f"{api.base}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(int(float(line.rpartition(" ")[2])) for line in text.splitlines()
               if line.startswith("shibuya_api_requests_total{")
               and 'method="GET"' not in line)  # fmt: skip


def test_apply_creates_changes_only_what_differs_and_then_nothing(
    api: ApiServer, tmp_path: Path
) -> None:
    (tmp_path / "browse.jmx").write_bytes(JMX)
    (tmp_path / "users.csv").write_text("user\nann\nbob\n")
    decl = tmp_path / "shop.yaml"
    decl.write_text(SHOP)
    before = writes(api)
    code, out = shibuya(api, "alice", "apply", "-f", str(decl), "--dry-run")
    assert code == 0, out
    created = [
        "project shop: created (group team-a)",
        "plan browse: created",
        f"plan browse: browse.jmx uploaded ({len(JMX):,} bytes)",
        "plan browse: users.csv uploaded (13 bytes)",
        "collection checkout: created",
        "collection checkout: criteria changed (0 → 1); plan browse added",
    ]
    assert out.splitlines() == [f"would change: {line}" for line in created]
    assert writes(api) == before  # a dry run writes nothing

    code, out = shibuya(api, "alice", "apply", "-f", str(decl))
    assert (code, out.splitlines()) == (0, created)
    assert writes(api) == before + 6

    code, out = shibuya(api, "alice", "apply", "-f", str(decl))
    assert (code, out) == (0, "shop.yaml: no changes, the API holds what it declares\n")
    assert writes(api) == before + 6  # the second apply wrote nothing

    (tmp_path / "users.csv").write_text("user\nann\nbob\ncy\n")
    decl.write_text(SHOP.replace("engines: 2", "engines: 3").replace(
        "criteria:", "properties: {target.host: staging.example}\n    criteria:"))  # fmt: skip
    code, out = shibuya(api, "alice", "apply", "-f", str(decl))
    assert (code, out.splitlines()) == (0, [
        "plan browse: users.csv changed, uploaded (16 bytes)",
        "collection checkout: properties +target.host; browse.engines 2 → 3",
    ])  # fmt: skip
    assert writes(api) == before + 8
    code, out = shibuya(api, "alice", "get", "collection", "shop/checkout", "-o", "json")
    got = json.loads(out)
    assert got["properties"] == {"target.host": "staging.example"}
    assert [(p["name"], p["engines"], p["threads_per_engine"]) for p in got["plans"]] == [
        ("browse", 3, 5)
    ]


def test_everything_by_name_and_what_is_not_clear_is_an_error(
    api: ApiServer, tmp_path: Path
) -> None:
    (tmp_path / "browse.jmx").write_bytes(JMX)
    (tmp_path / "users.csv").write_text("user\nann\n")
    for project in ("mall", "mall2"):
        (tmp_path / f"{project}.yaml").write_text(
            SHOP.replace("project: shop", f"project: {project}")
        )
        assert shibuya(api, "alice", "apply", "-f", str(tmp_path / f"{project}.yaml"))[0] == 0

    code, out = shibuya(api, "alice", "get", "collection", "checkout")
    assert (code, out) == (1, "error: 3 collections are named 'checkout'; say which: "
                              "mall/checkout, mall2/checkout, shop/checkout\n")  # fmt: skip
    code, out = shibuya(api, "alice", "get", "collection", "mall/checkout", "-o", "csv")
    assert code == 0
    assert out.splitlines()[:2] == ["plan,engines,threads,ramp-up s,duration s,csv split",
                                    "browse,2,5,0,60,True"]  # fmt: skip
    code, out = shibuya(api, "alice", "list", "plans", "mall2", "-o", "csv")
    assert out.splitlines()[1].startswith("mall2/browse,")
    code, out = shibuya(api, "alice", "runs", "mall/checkout", "-o", "json")
    assert (code, json.loads(out)) == (0, [])
    assert shibuya(api, "alice", "delete", "collection", "mall2/checkout") == (
        0, "collection mall2/checkout deleted\n")  # fmt: skip
    code, out = shibuya(api, "alice", "get", "plan", "nope")
    assert (code, out) == (1, "error: no plan named 'nope'\n")
    # Another group's things do not exist for bob, even by name.
    code, out = shibuya(api, "bob", "get", "project", "mall")
    assert code == 1
    assert out.startswith("error: no project named 'mall' (yours: ")
    # A usage error is not an API error, nor a failed run.
    code, out = shibuya(api, "alice", "list", "widgets")
    assert code == 2
    assert "'widgets' is not one of 'project', 'plan', 'collection'" in out
    code, out = shibuya(api, "alice", "run", "mall/checkout", "-J", "novalue")
    assert code == 2
    assert "'novalue': name=value is needed" in out
