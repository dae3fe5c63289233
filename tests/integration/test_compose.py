"""The compose stack with podman, walked as docs/containers.md tells a user: every command of its
first `bash` block, run as written but for a project name, ports and an .env of the test's own
(docker-compose.local.yml: built images, Kafka and Prometheus stand-ins, the embedded ClickHouse
engine). ClickHouse then holds exactly the samples of the engine containers' JTL files, and
Prometheus scrapes every worker, the API and both engines."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from shibuya.dev import compose as stack
from shibuya.dev import images
from shibuya.dev.main_job import samples_in
from shibuya.dev.procs import free_port, port_open
from tests.support import containers
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 8  # docker-compose.yml's SHIBUYA_WORKER_KAFKA__PARTITIONS


def documented() -> list[str]:
    """The commands of the first `bash` block of docs/containers.md, without their comments."""
    text = (ROOT / "docs" / "containers.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, flags=re.S)
    assert block is not None
    return [line.split("  #")[0].strip() for line in block[1].splitlines() if line.strip()]


def shibuya(*args: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run([sys.executable, "-m", "shibuya", *args], capture_output=True,
                         text=True, check=False, cwd=ROOT, env=env, timeout=600)  # fmt: skip
    assert out.returncode == 0, f"shibuya {' '.join(args)}:\n{out.stdout[-3000:]}{out.stderr}"
    return out.stdout


@dataclass
class Walk:
    """The test's own: the compose project, .env and ports; what the commands printed."""

    folder: Path
    project: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}")
    api_port: int = field(default_factory=free_port)
    prometheus_port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    printed: dict[str, str] = field(default_factory=dict)

    @property
    def env_file(self) -> Path:
        return self.folder / ".env"

    def __post_init__(self) -> None:
        (self.folder / "ports.yml").write_text(f"""services:
  api: {{ports: !override ["127.0.0.1:{self.api_port}:8080"]}}
  prometheus: {{ports: !override ["127.0.0.1:{self.prometheus_port}:9090"]}}
""")

    def compose_args(self) -> list[str]:
        ports = self.folder / "ports.yml"
        return ["-p", self.project, "--env-file", str(self.env_file), "-f", str(ports)]

    def run(self, line: str) -> None:
        """One documented command, as the user's shell would run it, in the test's place."""
        if line.startswith("apt-get install"):
            assert not images.missing_tools()  # scripts/test installed them
        elif line.startswith("export "):
            for pair in shlex.split(line)[1:]:
                name, _, value = pair.partition("=")
                value = value.replace("<token>", self.printed["add-user"].strip())
                self.env[name] = value.replace(":8080", f":{self.api_port}")
        elif line.startswith('echo "ENGINE_TOKEN=$(shibuya engine-token '):
            token = shibuya("engine-token", line.split()[-3].rstrip(')"'), env=self.env).strip()
            self.env_file.write_text(self.env_file.read_text() + f"ENGINE_TOKEN={token}\n")
        else:
            argv = shlex.split(line)[1:]
            if argv[:2] == ["dev", "compose"]:
                argv[2:2] = self.compose_args()
            elif argv[:2] == ["dev", "compose-env"]:
                argv += ["--path", str(self.env_file)]
            key = "add-user" if "add-user" in argv else argv[0]
            self.printed[key] = shibuya(*argv, env=self.env)


@pytest.fixture
def walk(tmp_path: Path) -> Iterator[Walk]:
    """The test's walk; the stack down after it, volumes and all."""
    containers.built(*images.IMAGES)
    walk = Walk(tmp_path)
    running_before = stack.socket_path().exists()
    try:
        yield walk
    finally:
        if walk.env_file.exists():
            shibuya("dev", "compose", *walk.compose_args(), "down", "--volumes", "--timeout", "10")
        if not running_before:
            stack.stop_service()


def test_the_documented_compose_walk_runs_and_counts_every_sample(walk: Walk) -> None:
    prometheus = f"http://127.0.0.1:{walk.prometheus_port}/api/v1"

    def healthy() -> bool:  # Kafka serves a few seconds after the API starts
        answer = httpx.get(
            f"http://127.0.0.1:{walk.api_port}/api/health",
            timeout=30,
            headers={"Authorization": f"Bearer {walk.env['SHIBUYA_TOKEN']}"},
        )
        return all(check["ok"] for check in answer.json())

    def owned() -> float:  # the workers joined their group (docs: wait for 8, or run again)
        query = {"query": "sum(shibuya_owned_partitions)"}
        result = httpx.get(f"{prometheus}/query", params=query).json()["data"]["result"]
        return float(result[0]["value"][1]) if result else 0.0

    lines = documented()
    assert lines[-1] == "shibuya dev compose down --volumes"  # the fixture's end, with its args
    for line in lines[:-1]:
        if "add-user" in line:
            wait_until("the API to serve", lambda: port_open("127.0.0.1", walk.api_port), 120)
        if line.startswith("shibuya apply"):
            wait_until("every check of /api/health to pass", healthy, 120)
        if line.startswith("shibuya run"):
            wait_until("the workers to own every partition", lambda: owned() == PARTITIONS, 120)
        walk.run(line)
    assert "finished — 2 of 2 engines finished" in walk.printed["run"], walk.printed["run"]
    headers = {"Authorization": f"Bearer {walk.env['SHIBUYA_TOKEN']}"}
    with httpx.Client(base_url=walk.env["SHIBUYA_URL"], headers=headers, timeout=30) as c:
        (run,) = c.get("/api/collections/1/runs").json()["items"]
        written = 0
        for engine in ("engine-0", "engine-1"):
            jtl = walk.folder / f"{engine}.jtl"
            shibuya("dev", "compose", *walk.compose_args(), "cp",
                    f"{engine}:/work/runs/{run['id']}/results.jtl", str(jtl))  # fmt: skip
            assert samples_in(jtl) > 0, engine
            written += samples_in(jtl)
        total = c.get(f"/api/runs/{run['id']}/report").json()["total"]
        assert total["samples"] == written == run["samples"], run
    targets = httpx.get(f"{prometheus}/targets").json()["data"]["activeTargets"]
    health = {(t["labels"]["job"], t["labels"]["instance"]): t["health"] for t in targets}
    assert health == {("shibuya-api", "api:8080"): "up", ("shibuya-worker", "worker-1:9464"): "up",
                      ("shibuya-worker", "worker-2:9464"): "up",
                      ("shibuya-engine", "engine-0:8089"): "up",
                      ("shibuya-engine", "engine-1:8089"): "up"}  # fmt: skip
