"""The Helm chart: `helm lint`, `helm template` (helm built from the Go module proxy), what it
refuses, settings that exist and parse, the scheduler's Role, and every rendered object applied
with a server-side dry run to the real API server of the scheduler's tests."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, dynamic

from control.schedulers.kube import RBAC_RULES
from control.settings import ApiSettings
from shibuya.dev import kube
from shibuya.dev.kube import TOLERATION
from streams.settings import WorkerSettings
from tests.support.settings import env_names
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

CHART = Path(__file__).parents[2] / "helm" / "shibuya"
REQUIRED = {"database.url": "postgresql+psycopg://shibuya:secret@postgres:5432/shibuya",
            "clickhouse.dsn": "http://default:secret@clickhouse:8123/default"}  # fmt: skip


@pytest.fixture(scope="module")
def helm() -> Path:
    return kube.helm()


def _helm(
    helm: Path, *args: str, values: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``helm ARGS`` with the required values (as strings) and ``values`` (typed: numbers and
    booleans stay numbers and booleans)."""
    sets = [a for k, v in REQUIRED.items() if k not in (values or {})
            for a in ("--set-string", f"{k}={v}")]  # fmt: skip
    sets += [a for k, v in (values or {}).items() for a in ("--set", f"{k}={v}")]
    return subprocess.run([str(helm), *args, *sets], capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip


def render(helm: Path, namespace: str = "load", **values: str) -> list[dict[str, Any]]:
    out = _helm(helm, "template", "perf", str(CHART), "--namespace", namespace, values=values)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [doc] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def test_the_chart_lints_clean(helm: Path) -> None:
    out = _helm(helm, "lint", "--strict", str(CHART))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 chart(s) failed" in out.stdout


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"database.url": ""}, "database.url (or database.existingSecret) is required"),
        ({"clickhouse.dsn": ""}, "clickhouse.dsn (or clickhouse.existingSecret) is required"),
        ({"worker.replicas": "9"}, "worker.replicas (9) exceeds kafka.partitions (8)"),
        ({"api.replicas": "1"}, "api.minAvailable must be below api.replicas"),
        ({"api.authMode": "none"}, "api.authMode none turns authentication off"),
    ],
)  # fmt: skip
def test_the_chart_refuses_what_cannot_work(
    helm: Path, values: dict[str, str], message: str
) -> None:
    out = _helm(helm, "template", "perf", str(CHART), values=values)
    assert out.returncode != 0
    assert message in out.stderr


def test_replicas_budget_role_and_settings_in_step_with_the_code(
    helm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render(helm, **{"api.replicas": "3", "api.minAvailable": "2", "worker.replicas": "4",
                           "engines.namespace": "engines",
                           "engines.nodeSelector.pool": "load"})  # fmt: skip
    assert _one(docs, "Deployment", "perf-shibuya-api")["spec"]["replicas"] == 3
    assert _one(docs, "PodDisruptionBudget", "perf-shibuya-api")["spec"]["minAvailable"] == 2
    assert _one(docs, "Deployment", "perf-shibuya-worker")["spec"]["replicas"] == 4
    role = _one(docs, "Role", "perf-shibuya-scheduler")
    assert role["metadata"]["namespace"] == "engines"
    assert role["rules"] == RBAC_RULES  # exactly what the scheduler needs, tested against RBAC
    binding = _one(docs, "RoleBinding", "perf-shibuya-scheduler")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "perf-shibuya-api",
                                    "namespace": "load"}]  # fmt: skip

    # Every variable the chart sets is a setting; the API and the worker parse them all.
    api_env = _one(docs, "ConfigMap", "perf-shibuya-api")["data"]
    worker_env = _one(docs, "ConfigMap", "perf-shibuya-worker")["data"]
    secret_env = {e["name"] for e in _one(docs, "Deployment", "perf-shibuya-api")["spec"][
        "template"]["spec"]["containers"][0]["env"]}  # fmt: skip
    assert set(api_env) | secret_env <= env_names(ApiSettings)
    assert set(worker_env) <= env_names(WorkerSettings)
    for name, value in {**api_env, **worker_env}.items():
        monkeypatch.setenv(name, value)
    api = ApiSettings()
    assert api.scheduler.kind == "kubernetes"
    assert api.scheduler.kubernetes.namespace == "engines"
    assert api.scheduler.kubernetes.node_selector == {"pool": "load"}
    assert api.scheduler.kubernetes.image == "shibuya-engine:0.1.0"
    assert api.base_url == "http://perf-shibuya-api.load.svc:8080"
    assert WorkerSettings().kafka.partitions == 8


def test_kafka_with_sasl_each_deployable_its_principal_passwords_from_secrets(
    helm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render(helm, **{"kafka.securityProtocol": "SASL_SSL", "kafka.existingSecret": "bus",
                           "engines.envFromSecrets[0]": "engine-bus"})  # fmt: skip
    api_env = _one(docs, "ConfigMap", "perf-shibuya-api")["data"]
    worker_env = _one(docs, "ConfigMap", "perf-shibuya-worker")["data"]
    assert not any("PASSWORD" in k for k in {**api_env, **worker_env})  # never in a ConfigMap
    refs: dict[str, object] = {}
    for name in ("perf-shibuya-api", "perf-shibuya-worker"):
        container = _one(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        refs |= {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container.get("env", [])
                 if "PASSWORD" in e["name"]}  # fmt: skip
    assert refs == {
        "SHIBUYA_API_KAFKA__PASSWORD": {"name": "bus", "key": "API_PASSWORD"},
        "SHIBUYA_WORKER_KAFKA__PASSWORD": {"name": "bus", "key": "WORKER_PASSWORD"},
    }
    for name, value in {**api_env, **worker_env}.items():
        monkeypatch.setenv(name, value)
    api, worker = ApiSettings(), WorkerSettings()
    assert (api.kafka.access.protocol, api.kafka.username, worker.kafka.username) == (
        "SASL_SSL", "api", "worker")  # fmt: skip
    assert api.kafka.sidecar_env(with_password=False)["SHIBUYA_SIDECAR_KAFKA__USERNAME"] == (
        "sidecar")  # fmt: skip
    assert api.scheduler.kubernetes.env_from_secrets == ["engine-bus"]


def test_the_single_sign_on_secret_comes_from_a_secret(helm: Path) -> None:
    docs = render(helm, **{"oidc.existingSecret": "sso",
                           "api.env.OIDC__ISSUER": "https://id.example/realms/perf"})  # fmt: skip
    assert _one(docs, "ConfigMap", "perf-shibuya-api")["data"]["SHIBUYA_API_OIDC__ISSUER"] == (
        "https://id.example/realms/perf")  # fmt: skip
    container = _one(docs, "Deployment", "perf-shibuya-api")["spec"]["template"]["spec"][
        "containers"][0]  # fmt: skip
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]
            if "OIDC" in e["name"]}  # fmt: skip
    assert refs == {"SHIBUYA_API_OIDC__CLIENT_SECRET": {"name": "sso", "key": "OIDC_CLIENT_SECRET"}}


def test_a_service_monitor_on_request(helm: Path) -> None:
    docs = render(helm, **{"metrics.serviceMonitor.enabled": "true"})
    monitor = _one(docs, "ServiceMonitor", "perf-shibuya")
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics", "http"]
    ports = {p["name"] for d in docs if d["kind"] == "Service" for p in d["spec"]["ports"]}
    assert ports == {"metrics", "http"}


@pytest.fixture
def kube_api(kubeconfig: Path) -> Iterator[Any]:
    api: Any = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    yield api
    api.close()


def test_every_rendered_object_passes_the_api_servers_dry_run(helm: Path, kube_api: Any) -> None:
    """Server-side apply with ``dryRun=All``: the API server validates, defaults and admits
    every object (schemas, immutable fields, RBAC escalation checks) without storing it."""
    core: Any = client.CoreV1Api(kube_api)
    namespace = f"h{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": namespace}})
    try:
        docs = render(helm, namespace, **{"metrics.serviceMonitor.enabled": "false"})
        kinds = sorted(d["kind"] for d in docs)
        assert kinds == ["ConfigMap", "ConfigMap", "Deployment", "Deployment",
                         "PersistentVolumeClaim", "PodDisruptionBudget", "Role", "RoleBinding",
                         "Secret", "Service", "Service", "ServiceAccount"]  # fmt: skip
        resources = dynamic.DynamicClient(kube_api).resources  # type: ignore[no-untyped-call]
        for doc in docs:
            api = resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
            answer = api.server_side_apply(body=doc, name=doc["metadata"]["name"],
                                           namespace=namespace, field_manager="helm-test",
                                           dry_run="All")  # fmt: skip
            assert answer.metadata.name == doc["metadata"]["name"]
        stored = core.list_namespaced_config_map(namespace).items
        assert [c.metadata.name for c in stored] == ["kube-root-ca.crt"]  # a dry run stores nothing
    finally:
        core.delete_namespace(namespace)


def test_the_installed_chart_runs_its_workloads(helm: Path, kube_api: Any, tmp_path: Path) -> None:
    """Applied for real: the controller manager makes the pods, the fake nodes run them, the
    plan-file claim binds, and the disruption budget counts the API's pods."""
    core: Any = client.CoreV1Api(kube_api)
    apps: Any = client.AppsV1Api(kube_api)
    policy: Any = client.PolicyV1Api(kube_api)
    namespace = f"h{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": namespace}})
    volume = f"files-{namespace}"
    core.create_persistent_volume({
        "metadata": {"name": volume},
        "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany"],
                 "storageClassName": volume, "hostPath": {"path": str(tmp_path)}},
    })  # fmt: skip
    placement = {
        "nodeSelector.type": "kwok",
        "tolerations[0].key": TOLERATION["key"],
        "tolerations[0].operator": "Exists",
        "tolerations[0].effect": "NoSchedule",
    }
    on_fake_nodes = {f"{part}.{k}": v for part in ("api", "worker") for k, v in placement.items()}
    try:
        docs = render(helm, namespace, **on_fake_nodes, **{"api.files.storageClass": volume})
        resources = dynamic.DynamicClient(kube_api).resources  # type: ignore[no-untyped-call]
        for doc in docs:
            resources.get(api_version=doc["apiVersion"], kind=doc["kind"]).server_side_apply(
                body=doc, name=doc["metadata"]["name"], namespace=namespace,
                field_manager="helm-test")  # fmt: skip

        def ready(name: str) -> int:
            status = apps.read_namespaced_deployment(name, namespace).status
            return int(status.ready_replicas or 0)

        wait_until("both API replicas and both workers ready", lambda: (
            ready("perf-shibuya-api"), ready("perf-shibuya-worker")) == (2, 2), 90)  # fmt: skip
        claim = core.read_namespaced_persistent_volume_claim("perf-shibuya-files", namespace)
        assert claim.status.phase == "Bound"
        wait_until("the budget to count the API's pods", lambda: (
            policy.read_namespaced_pod_disruption_budget("perf-shibuya-api", namespace).status
            .current_healthy) == 2, 60)  # fmt: skip
        budget = policy.read_namespaced_pod_disruption_budget("perf-shibuya-api", namespace)
        assert (budget.status.expected_pods, budget.status.disruptions_allowed) == (2, 1)
    finally:
        core.delete_namespace(namespace)
        core.delete_persistent_volume(volume)
