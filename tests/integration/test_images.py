"""The project's images, built here with podman from the Dockerfiles users build, run for real.

The controller image serves the API (its Kubernetes scheduler on the real control plane, its
ClickHouse embedded) and runs a stream worker, both with the read-only root, the user and the
dropped capabilities the chart gives them. The API deploys a collection; the engine pods the
StatefulSet controller makes are run by a node of podman (tests/support/podman_node.py) from their
spec as the API server holds it, probes and all; the engine image's sidecar runs real JMeter
and the Locust and Gatling images their engines, against the HTTP target, all in one run;
ClickHouse ends up with exactly the samples of the engines' results files.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from control.schedulers import manifests as m
from shibuya.dev import images, target
from shibuya.dev.api_proc import ApiProcess
from shibuya.dev.kube import FAKE_NODE, TOLERATION
from shibuya.dev.main_job import samples_in
from shibuya.dev.procs import free_port, port_open
from tests.support import containers
from tests.support.api import FAST, JMX, USERS, ApiServer
from tests.support.local_runs import run_to_end, stored_report
from tests.support.plans import LOCUSTFILE, SIMULATION, USERS_CSV
from tests.support.podman_node import podman_node
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def built() -> dict[str, str]:
    return containers.built("controller-embedded", "engine", "engine-locust", "engine-gatling")


def _self_contained(kubeconfig: Path, dest: Path) -> Path:
    """The kubeconfig with its CA inline, for a container that cannot read the host's files."""
    config = yaml.safe_load(kubeconfig.read_text())
    for cluster in config["clusters"]:
        ca = Path(cluster["cluster"].pop("certificate-authority")).read_bytes()
        cluster["cluster"]["certificate-authority-data"] = base64.b64encode(ca).decode()
    dest.write_text(yaml.safe_dump(config))
    dest.chmod(0o644)
    return dest


@pytest.fixture
def controller(
    built: dict[str, str], tmp_path: Path, kubeconfig: Path, namespace: str,
    kafka_bootstrap: str, unique: str,
) -> Iterator[tuple[ApiServer, containers.Container]]:  # fmt: skip
    """The API and a worker, each in a container of the controller image; alice's token."""
    image = built["controller-embedded"]
    kafka = {"KAFKA__BOOTSTRAP": kafka_bootstrap, "KAFKA__TOPIC_PREFIX": unique}
    worker_env = {f"SHIBUYA_WORKER_{k}": v for k, v in {
        **kafka, **FAST, "ENGINE_LOST_S": "15", "APP_ID": unique, "METRICS_HOST": "127.0.0.1",
        "METRICS_PORT": str(free_port())}.items()}  # fmt: skip
    data = containers.writable(tmp_path / "worker")
    worker = containers.run(
        f"{unique}-worker",
        image,
        ["worker", "run"],
        env=worker_env,
        log=tmp_path / "worker.log",
        read_only=True,
        volumes={data: "/data"},
    )
    port = free_port()
    config = _self_contained(kubeconfig, tmp_path / "kubeconfig")
    api_env = {f"SHIBUYA_API_{k}": v for k, v in {
        **kafka, "HOST": "127.0.0.1", "PORT": str(port), "SINK__ENABLED": "true",
        "SINK__GROUP_ID": f"{unique}-sink", "RUNS_GROUP_ID": f"{unique}-runs",
        "COMMANDS_GROUP_ID": f"{unique}-commands", "SCHEDULER__KIND": "kubernetes",
        "SCHEDULER__KUBERNETES__KUBECONFIG": "/kube/config",
        "SCHEDULER__KUBERNETES__NAMESPACE": namespace,
        "SCHEDULER__KUBERNETES__NODE_SELECTOR": json.dumps(dict([FAKE_NODE["label"]])),
        "SCHEDULER__KUBERNETES__TOLERATIONS": json.dumps([TOLERATION])}.items()}  # fmt: skip
    api = containers.run(f"{unique}-api", image, ["api", "serve"], env=api_env,
                         log=tmp_path / "api" / "api.log", read_only=True,
                         volumes={containers.writable(tmp_path / "api" / "data"): "/data",
                                  config: "/kube/config:ro"})  # fmt: skip
    try:
        wait_until("the API in its container to answer", lambda: port_open("127.0.0.1", port),
                   120, api.log_tail)  # fmt: skip
        token = api.exec("shibuya", "api", "add-user", "alice", *(
            a for g in USERS["alice"] for a in ("--group", g))).strip()  # fmt: skip
        process = ApiProcess(proc=api.proc, base=f"http://127.0.0.1:{port}", log=api.log)
        yield ApiServer(process=process, database_url="", tokens={"alice": token}), worker
    finally:
        assert api.stop(), api.log_tail()
        assert worker.stop(), worker.log_tail()


def _mixed(c: httpx.Client, target_url: str) -> tuple[int, dict[int, str]]:
    """A collection of three plans, one per engine type, JMeter's on two engines: (its id, the
    engine type of each plan)."""
    project = c.post("/api/projects", json={"name": "shop", "group": "team-a"}).json()["id"]
    files = {"jmeter": {"plan.jmx": JMX, "users.csv": b"u\na\n"},
             "locust": {"locustfile.py": LOCUSTFILE, "users.csv": USERS_CSV},
             "gatling": {"ShopSimulation.java": SIMULATION}}  # fmt: skip
    plans: dict[int, str] = {}
    for engine, named in files.items():
        plan = c.post(f"/api/projects/{project}/plans", json={"name": engine}).json()["id"]
        for name, body in named.items():
            assert c.put(f"/api/plans/{plan}/files/{name}", content=body).status_code == 200
        plans[plan] = engine
    collection = c.post(f"/api/projects/{project}/collections", json={"name": "mixed"}).json()
    # Gatling's simulation ends on its own after the run property "seconds" (its JVM and its
    # compiler start slowly on a busy machine), which leaves its results complete.
    tests = [{"testid": plan, "engine": engine, "engines": 2 if engine == "jmeter" else 1,
              "duration_s": 30 if engine == "gatling" else 6,
              **({"concurrency": 2} if engine == "jmeter" else {"users": 2})}
             for plan, engine in plans.items()]  # fmt: skip
    config = {
        "multi-test": {
            "name": "mixed",
            "projectid": project,
            "collectionid": collection["id"],
            "tests": tests,
            "thresholds": ["error_rate > 50% over 3s"],
            "env": {"LOCUST_HOST": target_url, "TARGET_URL": target_url},
        }
    }
    r = c.put(f"/api/collections/{collection['id']}/config", content=yaml.safe_dump(config))
    assert r.status_code == 200, r.text
    return collection["id"], plans


def test_the_images_run_a_kubernetes_deployed_test_of_every_engine_and_count_every_sample(
    controller: tuple[ApiServer, containers.Container], kube: Any, namespace: str, tmp_path: Path,
) -> None:  # fmt: skip
    api, worker = controller
    with api.client(None) as anyone:
        assert anyone.get("/healthz").status_code == 200
        assert anyone.get("/api/projects").status_code == 401  # secure in a container too
    with target.serve() as port, api.client("alice") as c:
        collection, plans = _mixed(c, f"http://127.0.0.1:{port}")
        selector = m.collection_selector(str(collection))
        with podman_node(kube, namespace, tmp_path / "node", selector) as node:
            run_id = run_to_end(api, c, collection, {"target.port": str(port), "seconds": "4"})
            assert not node.errors, node.errors
            assert sorted(node.pods) == sorted(
                m.pod_name(str(collection), str(plan), i)
                for plan, engine in plans.items()
                for i in range(2 if engine == "jmeter" else 1)
            )
            assert all(p.ready() for p in node.pods.values())  # the readiness probe, as kubelets
            jtls = {name: p.work[m.WORK_DIR] / "runs" / run_id / "results.jtl"
                    for name, p in node.pods.items()}  # fmt: skip
            written = {name: samples_in(f) for name, f in jtls.items()}
            assert min(written.values()) > 0, written  # every engine, of every image, wrote
            report = stored_report(c, run_id, sum(written.values()))
            run = c.get(f"/api/runs/{run_id}").json()
            assert report["total"]["samples"] == sum(written.values()) == run["samples"], run
            assert (run["outcome"], run["samples_missing"]) == ("finished", 0), run
            assert [v["passed"] for v in run["criteria"]] == [True], run
            assert run["plan_engines"] == {str(p): e for p, e in plans.items()}
            page = c.get(f"/api/runs/{run_id}/report.html")
            assert page.status_code == 200, page.text
            assert c.post(f"/api/collections/{collection}/purge", json={}).status_code in (200, 202)
            wait_until("the purge to stop the engines' containers", lambda: not node.pods, 120,
                       lambda: f"{node.errors} {worker.log_tail()}")  # fmt: skip
        assert all(not p.container.running() for p in node.gone)


def test_shibuya_dev_images_builds_each_image_once_and_says_its_size(
    built: dict[str, str],
) -> None:
    """The documented command (docs/containers.md): every image, built unless its inputs are the
    ones it was built from — here they are, so nothing is built again."""
    before = {ref: images.image_id(ref) for ref in built.values()}
    out = subprocess.run([sys.executable, "-m", "shibuya", "dev", "images"], capture_output=True,
                         text=True, check=False, timeout=1800)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert [r[0] for r in rows] == [images.IMAGES[n].ref() for n in images.IMAGES]
    assert all(float(r[1].removesuffix(" MB")) > 100 for r in rows), rows
    assert {ref: images.image_id(ref) for ref in built.values()} == before  # not built again
    wrong = subprocess.run([sys.executable, "-m", "shibuya", "dev", "images", "engine-k6"],
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert wrong.returncode == 2
    assert "no image engine-k6; there are: controller, controller-embedded, engine" in wrong.stderr
