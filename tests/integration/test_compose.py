"""The compose stack with podman, walked as docs/containers.md tells a user: docker-compose.yml
with docker-compose.local.yml (built images, Kafka and Prometheus stand-ins, the embedded
ClickHouse engine), a user added in the API's container, examples/shop.yaml applied, the engines
started with their token, `shibuya run` — and ClickHouse holds exactly the samples of the engine
containers' JTL files; Prometheus scrapes every worker, the API and both engines."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
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


def shibuya(*args: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run([sys.executable, "-m", "shibuya", *args], capture_output=True,
                         text=True, check=False, cwd=ROOT, env=env, timeout=600)  # fmt: skip
    assert out.returncode == 0, f"shibuya {' '.join(args)}:\n{out.stdout[-3000:]}{out.stderr}"
    return out.stdout


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[list[str], int, int]]:
    """The stack up under a project name of its own, its ports free ones: (the compose
    arguments that name it, the API's port, Prometheus's port); down, volumes and all, after."""
    containers.built(*images.IMAGES)
    env_file = tmp_path / ".env"
    shibuya("dev", "compose-env", "--path", str(env_file))
    api_port, prometheus_port = free_port(), free_port()
    ports = tmp_path / "ports.yml"
    ports.write_text(f"""services:
  api: {{ports: !override ["127.0.0.1:{api_port}:8080"]}}
  prometheus: {{ports: !override ["127.0.0.1:{prometheus_port}:9090"]}}
""")
    args = ["-p", f"t{uuid.uuid4().hex[:8]}", "--env-file", str(env_file), "-f", str(ports)]
    running_before = stack.socket_path().exists()
    try:
        shibuya("dev", "compose", *args, "up", "-d")
        yield args, api_port, prometheus_port
    finally:
        shibuya("dev", "compose", *args, "down", "--volumes", "--timeout", "10")
        if not running_before:
            stack.stop_service()


def test_the_compose_stack_runs_the_documented_walk_and_counts_every_sample(
    up: tuple[list[str], int, int], tmp_path: Path
) -> None:
    args, api_port, prometheus_port = up
    wait_until("the API to serve", lambda: port_open("127.0.0.1", api_port), 120)
    token = shibuya("dev", "compose", *args, "exec", "-T", "api", "shibuya", "api", "add-user",
                    "me", "--group", "team", "--admin").strip()  # fmt: skip
    env = {**os.environ, "SHIBUYA_URL": f"http://127.0.0.1:{api_port}", "SHIBUYA_TOKEN": token}
    headers = {"Authorization": f"Bearer {token}"}

    def healthy() -> bool:  # Kafka serves a few seconds after the API (no healthchecks here)
        checks = httpx.get(f"{env['SHIBUYA_URL']}/api/health", headers=headers, timeout=30)
        return all(check["ok"] for check in checks.json())

    wait_until("every check of /api/health to pass", healthy, 120)
    shibuya("apply", "-f", "examples/shop.yaml", env=env)
    engine_token = shibuya("engine-token", "shop/checkout", env=env).strip()
    env_file = Path(args[args.index("--env-file") + 1])
    env_file.write_text(env_file.read_text() + f"ENGINE_TOKEN={engine_token}\n")
    shibuya("dev", "compose", *args, "up", "-d", "engine-0", "engine-1")
    prometheus = f"http://127.0.0.1:{prometheus_port}/api/v1"

    def owned() -> float:  # the workers joined their group: a run can start (they own its topic)
        query = {"query": "sum(shibuya_owned_partitions)"}
        result = httpx.get(f"{prometheus}/query", params=query).json()["data"]["result"]
        return float(result[0]["value"][1]) if result else 0.0

    wait_until("the workers to own every results partition", lambda: owned() == PARTITIONS, 120)
    out = shibuya("run", "shop/checkout", env=env)  # waits for the end; exit 0: passed
    assert "finished — 2 of 2 engines finished" in out, out
    with httpx.Client(base_url=env["SHIBUYA_URL"], headers=headers, timeout=30) as c:
        (run,) = c.get("/api/collections/1/runs").json()["items"]
        written = 0
        for engine in ("engine-0", "engine-1"):
            jtl = tmp_path / f"{engine}.jtl"
            shibuya("dev", "compose", *args, "cp",
                    f"{engine}:/work/runs/{run['id']}/results.jtl", str(jtl))  # fmt: skip
            assert samples_in(jtl) > 0, engine
            written += samples_in(jtl)
        total = c.get(f"/api/runs/{run['id']}/report").json()["total"]
        assert total["samples"] == written == run["samples"], run
    targets = httpx.get(f"{prometheus}/targets").json()
    health = {(t["labels"]["job"], t["labels"]["instance"]): t["health"]
              for t in targets["data"]["activeTargets"]}  # fmt: skip
    assert set(health) == {("shibuya-api", "api:8080"), ("shibuya-worker", "worker-1:9464"),
                           ("shibuya-worker", "worker-2:9464"), ("shibuya-engine", "engine-0:8089"),
                           ("shibuya-engine", "engine-1:8089")}  # fmt: skip
    assert all(h == "up" for h in health.values()), health
