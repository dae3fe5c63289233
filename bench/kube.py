"""Deploy, status and purge of a collection's engines on a real Kubernetes control plane (etcd,
kube-apiserver, controller manager, scheduler; KWOK nodes), by the Kubernetes scheduler (one
StatefulSet per plan), against a baseline measured in the same run: one Pod per engine, each
created, read and deleted on its own (what a scheduler that works engine by engine does;
Shibuya's old per-engine path made three objects per engine).

Per shape (plans × engines) and approach: the requests the client made (counted at the client),
the seconds from the deploy call until every engine runs, the time of one status (median of 5),
and the seconds from the purge call until no pod is left. KWOK marks pods running at once, so
the times are the control plane's work, not a container runtime's.

    .venv/bin/python -m bench.kube                    # starts a cluster (built once, cached)
    .venv/bin/python -m bench.kube --kubeconfig .shibuya/kube/kubeconfig
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubernetes import client, config
from rich.console import Console
from rich.table import Table

from control.schedulers import Deployment, PlanEngines
from control.schedulers import manifests as m
from control.schedulers.kube import KubernetesScheduler, pod_phase
from control.schedulers.processes import wait_for
from control.settings import KafkaSettings, KubernetesSettings
from shibuya.dev.kube import FAKE_NODE, TOLERATION, KubeCluster

SHAPES = [(1, 10), (1, 100), (10, 10)]


class CountingClient(client.ApiClient):
    """The Kubernetes client, counting the requests it sends."""

    requests = 0

    def call_api(self, *args: Any, **kwargs: Any) -> Any:
        self.requests += 1
        return super().call_api(*args, **kwargs)


class PodPerEngine:
    """The baseline: a bare Pod per engine (the same pod template as ours), one request each."""

    def __init__(self, settings: KubernetesSettings, api: client.ApiClient) -> None:
        self.settings = settings
        self.core: Any = client.CoreV1Api(api)
        self.ns = settings.namespace

    def deploy(self, d: Deployment) -> None:
        for plan in d.plans:
            template = m.statefulset(self.settings, project_id=d.project_id,
                                     collection_id=d.collection_id, plan_id=plan.plan_id,
                                     engines=plan.engines, deployed_ms=0,
                                     env={})["spec"]["template"]  # fmt: skip
            for i in range(plan.engines):
                name = m.pod_name(d.collection_id, plan.plan_id, i)
                body = {"apiVersion": "v1", "kind": "Pod",
                        "metadata": {**template["metadata"], "name": name},
                        "spec": template["spec"]}  # fmt: skip
                self.core.create_namespaced_pod(self.ns, body)

    def engines(self, d: Deployment) -> list[str]:
        return [pod_phase(self.core.read_namespaced_pod(m.pod_name(d.collection_id, p.plan_id, i),
                                                        self.ns))[0]
                for p in d.plans for i in range(p.engines)]  # fmt: skip

    def purge(self, d: Deployment) -> None:
        for p in d.plans:
            for i in range(p.engines):
                self.core.delete_namespaced_pod(m.pod_name(d.collection_id, p.plan_id, i), self.ns)


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(kubeconfig: Path, plans: int, engines: int, baseline: bool) -> dict[str, float]:
    api: Any = CountingClient(_configuration(kubeconfig))
    core: Any = client.CoreV1Api(api)
    ns = f"b{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": ns}})
    settings = KubernetesSettings(
        kubeconfig=kubeconfig, namespace=ns, tolerations=[TOLERATION], cpu_request="100m",
        memory_request="128Mi", node_selector={FAKE_NODE["label"][0]: FAKE_NODE["label"][1]},
    )  # fmt: skip
    d = Deployment("9", "1", [PlanEngines(str(p), engines) for p in range(plans)])
    ours = KubernetesScheduler(
        settings, kafka=KafkaSettings(bootstrap="kafka:9092", topic_prefix="b"), api=api
    )
    naive = PodPerEngine(settings, api)

    def status() -> list[str]:
        return naive.engines(d) if baseline else [e.phase for e in ours.engines("9")]

    def pods_left() -> int:
        return len(core.list_namespaced_pod(ns, label_selector=m.ENGINES).items)

    out: dict[str, float] = {}
    try:
        api.requests = 0
        t0 = time.perf_counter()
        naive.deploy(d) if baseline else ours.deploy(d)
        out["deploy requests"] = api.requests
        if not wait_for(lambda: status().count("running") == plans * engines, 120, 0.05):
            raise SystemExit(f"{plans} × {engines}: not every engine running after 120 s")
        out["deploy → all running s"] = time.perf_counter() - t0
        api.requests = 0
        times = [_timed(status) for _ in range(5)]
        out["status requests"] = api.requests / 5
        out["status ms"] = statistics.median(times) * 1000
        api.requests = 0
        t0 = time.perf_counter()
        naive.purge(d) if baseline else ours.purge("9", int(time.time() * 1000))
        out["purge requests"] = api.requests
        if not wait_for(lambda: pods_left() == 0, 120, interval_s=0.05):
            raise SystemExit(f"{plans} × {engines}: pods left 120 s after the purge")
        out["purge → no pod s"] = time.perf_counter() - t0
    finally:
        core.delete_namespace(ns)
        api.close()
    return out


def _configuration(kubeconfig: Path) -> client.Configuration:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)  # type: ignore[no-untyped-call]
    return configuration


@contextmanager
def cluster(kubeconfig: Path | None) -> Iterator[Path]:
    if kubeconfig is not None:
        yield kubeconfig
        return
    with tempfile.TemporaryDirectory(prefix="bench-kube-") as d:
        c = KubeCluster(Path(d), nodes=2)
        c.start()
        try:
            yield c.kubeconfig
        finally:
            c.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", type=Path, help="a running cluster (else one is started)")
    args = parser.parse_args()
    console = Console()
    table = Table(title="Kubernetes scheduler: one StatefulSet per plan vs one Pod per engine")
    for col in ("plans × engines", "measure", "pod per engine", "StatefulSet per plan", "ratio"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    with cluster(args.kubeconfig) as kubeconfig:
        for plans, engines in SHAPES:
            base = measure(kubeconfig, plans, engines, baseline=True)
            ours = measure(kubeconfig, plans, engines, baseline=False)
            for key, b in base.items():
                o = ours[key]
                table.add_row(f"{plans} × {engines}", key, f"{b:,.2f}", f"{o:,.2f}",
                              f"{o / b:.2f}" if b else "")  # fmt: skip
            table.add_section()
    console.print(table)


if __name__ == "__main__":
    main()
