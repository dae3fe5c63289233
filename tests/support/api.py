"""The control API as a real server process, with users and their tokens."""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from shibuya.dev.api_proc import ApiProcess, add_user, api_env
from shibuya.dev.procs import ServiceError

#: Who calls in the tests: an owner, someone of another group, an admin.
USERS = {"alice": ["team-a"], "bob": ["team-b"], "root": ["ops"]}
#: Stream settings for runs that end in seconds.
FAST = {"STOP_GRACE_S": "1", "ENGINE_LOST_S": "5", "RUN_SETTLE_S": "10", "GC_IDLE_S": "600"}
JMX = (Path(__file__).parents[2] / "examples" / "two-samplers.jmx").read_bytes()


@dataclass
class ApiServer:
    process: ApiProcess
    database_url: str
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return self.process.base

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        return self.process.proc

    @property
    def log(self) -> Path:
        return self.process.log

    def client(self, who: str | None) -> httpx.Client:
        return self.process.client(self.tokens[who] if who else None)

    def stop(self) -> None:
        self.process.stop()


def env_for_tests(data_dir: Path, database_url: str, **settings: str) -> dict[str, str]:
    defaults = {
        "DATABASE__URL": database_url,
        "SINK__ENABLED": "false",
        "SCHEDULER__KIND": "external",  # engines are the tests' (or local, if set)
    }
    return api_env(data_dir, **{**defaults, **settings})


def start_api(
    data_dir: Path, database_url: str, tokens: dict[str, str] | None = None, **settings: str
) -> ApiServer:
    """Start an API; its users are created unless ``tokens`` of existing ones are given. On the
    port ``PORT`` if given (a free one otherwise)."""
    port = settings.pop("PORT", "")
    data_dir.mkdir(parents=True, exist_ok=True)
    env = env_for_tests(data_dir, database_url, **settings)
    if tokens is None and settings.get("AUTH__MODE") != "none":
        tokens = {name: add_user(env, name, groups, admin=name == "root")
                  for name, groups in USERS.items()}  # fmt: skip
    try:
        process = ApiProcess.start(env, data_dir / "api.log", port=int(port) if port else None)
    except ServiceError as exc:
        raise AssertionError(str(exc)) from exc
    return ApiServer(process=process, database_url=database_url, tokens=tokens or {})


def make_collection(
    api: ApiServer, duration_s: int, engines: int = 2, jmx: bytes = JMX,
    properties: dict[str, str] | None = None, plan_properties: dict[str, str] | None = None,
    jars: dict[str, bytes] | None = None,
    thresholds: tuple[str, ...] = ("error_rate > 50% over 3s",),
) -> tuple[int, int]:  # fmt: skip
    """alice's project with one plan (a JMX and a CSV) in a collection, with the collection's
    and the plan's JMeter ``properties``; (collection, plan)."""
    with api.client("alice") as c:
        name = f"shop-{uuid.uuid4().hex[:8]}"  # names are unique in a group
        project = c.post("/api/projects", json={"name": name, "group": "team-a"}).json()["id"]
        plan = c.post(f"/api/projects/{project}/plans", json={"name": "browse"}).json()["id"]
        for name, jar in (jars or {}).items():  # before the JMX that uses them
            assert c.put(f"/api/plans/{plan}/files/{name}", content=jar).status_code == 200
        r = c.put(f"/api/plans/{plan}/files/plan.jmx", content=jmx)
        assert r.status_code == 200, r.text
        assert c.put(f"/api/plans/{plan}/files/users.csv", content=b"u\na\n").status_code == 200
        body = {"name": "checkout", "thresholds": list(thresholds)}
        collection = c.post(f"/api/projects/{project}/collections", json=body).json()["id"]
        config = {"multi-test": {"name": "checkout", "projectid": project,
                                 "collectionid": collection, "thresholds": body["thresholds"],
                                 "properties": properties or {},
                                 "tests": [{"testid": plan, "concurrency": 5, "engines": engines,
                                            "duration_s": duration_s,
                                            "properties": plan_properties or {}}]}}  # fmt: skip
        r = c.put(f"/api/collections/{collection}/config", content=yaml.safe_dump(config))
        assert r.status_code == 200, r.text
    return collection, plan
