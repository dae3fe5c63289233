"""The control API as a real server process, with users and their tokens."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from shibuya.dev.procs import free_port, port_open, tail, terminate, wait_for

#: Who calls in the tests: an owner, someone of another group, an admin.
USERS = {"alice": ["team-a"], "bob": ["team-b"], "root": ["ops"]}
#: Stream settings for runs that end in seconds.
FAST = {"STOP_GRACE_S": "1", "ENGINE_LOST_S": "5", "RUN_SETTLE_S": "5", "GC_IDLE_S": "600"}
JMX = (Path(__file__).parents[2] / "examples" / "two-samplers.jmx").read_bytes()


@dataclass
class ApiServer:
    base: str
    proc: subprocess.Popen[bytes]
    log: Path
    database_url: str
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, who: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            terminate(self.proc.pid, 20)
            self.proc.wait()


def api_env(data_dir: Path, database_url: str, **settings: str) -> dict[str, str]:
    env = {
        **os.environ,
        "SHIBUYA_API_DATA_DIR": str(data_dir),
        "SHIBUYA_API_DATABASE__URL": database_url,
        "SHIBUYA_API_SINK__ENABLED": "false",
        "SHIBUYA_API_SCHEDULER__KIND": "external",  # engines are the tests' (or local, if set)
    }
    env.update({f"SHIBUYA_API_{k}": v for k, v in settings.items()})
    return env


def add_users(env: dict[str, str]) -> dict[str, str]:
    tokens = {}
    for name, groups in USERS.items():
        argv = [sys.executable, "-m", "shibuya", "api", "add-user", name]
        argv += [a for g in groups for a in ("--group", g)]
        if name == "root":
            argv.append("--admin")
        out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
        tokens[name] = out.stdout.strip()
    return tokens


def start_api(
    data_dir: Path, database_url: str, tokens: dict[str, str] | None = None, **settings: str
) -> ApiServer:
    """Start an API; its users are created unless ``tokens`` of existing ones are given."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = api_env(data_dir, database_url, PORT=str(port), **settings)
    if tokens is None:
        tokens = add_users(env) if settings.get("AUTH__MODE") != "none" else {}
    log = data_dir / "api.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "shibuya", "api", "serve"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    server = ApiServer(base=f"http://127.0.0.1:{port}", proc=proc, log=log,
                       database_url=database_url, tokens=tokens)  # fmt: skip
    if not wait_for(lambda: port_open("127.0.0.1", port) or proc.poll() is not None, 60) or (
        proc.poll() is not None
    ):
        server.stop()
        raise AssertionError(f"the API did not start:\n{tail(log, 40)}")
    return server


def make_collection(api: ApiServer, duration_s: int, engines: int = 2) -> tuple[int, int]:
    """alice's project with one plan (a JMX and a CSV) in a collection; (collection, plan)."""
    with api.client("alice") as c:
        project = c.post("/api/projects", json={"name": "shop", "group": "team-a"}).json()["id"]
        plan = c.post(f"/api/projects/{project}/plans", json={"name": "browse"}).json()["id"]
        assert c.put(f"/api/plans/{plan}/files/plan.jmx", content=JMX).status_code == 200
        assert c.put(f"/api/plans/{plan}/files/users.csv", content=b"u\na\n").status_code == 200
        body = {"name": "checkout", "thresholds": ["error_rate > 50% over 5s"]}
        collection = c.post(f"/api/projects/{project}/collections", json=body).json()["id"]
        config = {"multi-test": {"name": "checkout", "projectid": project,
                                 "collectionid": collection, "thresholds": body["thresholds"],
                                 "tests": [{"testid": plan, "concurrency": 5, "engines": engines,
                                            "duration_s": duration_s}]}}  # fmt: skip
        r = c.put(f"/api/collections/{collection}/config", content=yaml.safe_dump(config))
        assert r.status_code == 200, r.text
    return collection, plan
