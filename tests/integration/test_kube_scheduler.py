"""The Kubernetes scheduler against a real control plane (etcd, kube-apiserver, controller
manager, scheduler) whose nodes are KWOK's: StatefulSets, pods with their indices, idempotent
deploys, purges, status that follows the pods; and through the API, a collection deployed and
then purged by the stream's GC."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from control.schedulers import Deployment, EngineInfo, PlanEngines, SchedulerError
from control.schedulers import manifests as m
from control.schedulers.kube import RBAC_RULES, KubernetesScheduler
from control.settings import KafkaSettings, KubernetesSettings
from shibuya.dev.kube import FAKE_NODE, TOLERATION
from tests.support.api import ApiServer, make_collection, start_api
from tests.support.lifecycle import Harness
from tests.support.stream import Workers
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

KWOK_NODES = {FAKE_NODE["label"][0]: FAKE_NODE["label"][1]}


def _scheduler(kubeconfig: Path, namespace: str, **over: Any) -> KubernetesScheduler:
    settings = KubernetesSettings(**{
        "kubeconfig": kubeconfig, "namespace": namespace, "node_selector": KWOK_NODES,
        "tolerations": [TOLERATION], "cpu_request": "500m", "memory_request": "512Mi",
        "memory_limit": "1Gi", "pull_secrets": ["registry"], "service_account": "engine",
        **over,
    })  # fmt: skip
    return KubernetesScheduler(
        settings, kafka=KafkaSettings(bootstrap="kafka:9092", topic_prefix="t1")
    )


def _sets(kube: Any, namespace: str) -> dict[str, Any]:
    apps: Any = client.AppsV1Api(kube)
    items = apps.list_namespaced_stateful_set(namespace).items
    return {s.metadata.name: s for s in items}


def _pods(kube: Any, namespace: str, selector: str = m.ENGINES) -> dict[str, Any]:
    core: Any = client.CoreV1Api(kube)
    items = core.list_namespaced_pod(namespace, label_selector=selector).items
    return {p.metadata.name: p for p in items}


def _writes(kube: Any) -> dict[str, float]:
    """Requests that wrote a StatefulSet, by verb, as the API server counts them (its own
    Prometheus metrics)."""
    method, url, headers, _, _ = kube.param_serialize("GET", "/metrics",
                                                      auth_settings=["BearerToken"])  # fmt: skip
    response = kube.call_api(method, url, header_params=headers)
    response.read()
    out: dict[str, float] = {}
    for line in response.data.decode().splitlines():
        if (line.startswith("apiserver_request_total{") and 'resource="statefulsets"' in line
                and 'scope="resource"' in line and 'subresource=""' in line):  # fmt: skip
            verb = line.split('verb="')[1].split('"')[0]
            out[verb] = out.get(verb, 0) + float(line.rsplit(" ", 1)[1])
    return out


def _delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {v: n - before.get(v, 0) for v, n in after.items() if n != before.get(v, 0)}


def _phases(engines: list[EngineInfo]) -> list[tuple[str, int, str]]:
    return [(e.plan_id, e.index, e.phase) for e in engines]


def test_deploy_is_one_statefulset_per_plan_idempotent_and_purged_by_labels(
    kubeconfig: Path, kube: Any, namespace: str
) -> None:
    s = _scheduler(kubeconfig, namespace)
    deployment = Deployment("41", "9", [PlanEngines("7", 3), PlanEngines("8", 1)], "she_41")
    writes = _writes(kube)
    s.deploy(deployment)
    assert _delta(writes, _writes(kube)) == {"APPLY": 2}  # one write per plan, not per engine
    sets = _sets(kube, namespace)
    assert {n: x.spec.replicas for n, x in sets.items()} == {"engines-41-7": 3, "engines-41-8": 1}
    assert sets["engines-41-7"].metadata.labels[m.PROJECT] == "9"
    wait_until("every engine running", lambda: _phases(s.engines("41")) == [
        ("7", 0, "running"), ("7", 1, "running"), ("7", 2, "running"), ("8", 0, "running")],
        60, lambda: f"{s.engines('41')}")  # fmt: skip
    assert [e.engine_id for e in s.engines("41")] == ["41-7-0", "41-7-1", "41-7-2", "41-8-0"]

    pods = _pods(kube, namespace)
    assert sorted(pods) == ["engines-41-7-0", "engines-41-7-1", "engines-41-7-2", "engines-41-8-0"]
    pod = pods["engines-41-7-2"]
    labels = pod.metadata.labels
    assert (labels[m.KIND], labels[m.PROJECT], labels[m.COLLECTION], labels[m.PLAN]) == (
        "engine", "9", "41", "7")  # fmt: skip
    assert labels[m.POD_INDEX] == "2"  # the index each engine reads through the downward API
    container = pod.spec.containers[0]
    env = {e.name: e for e in container.env}
    assert env["SHIBUYA_SIDECAR_ENGINE__ENGINE_INDEX"].value_from.field_ref.field_path == (
        f"metadata.labels['{m.POD_INDEX}']")  # fmt: skip
    assert env["SHIBUYA_SIDECAR_KAFKA__BOOTSTRAP"].value == "kafka:9092"
    # The engine token comes from the collection's Secret, never from the pod's spec.
    ref = env["SHIBUYA_SIDECAR_ENGINE_TOKEN"].value_from.secret_key_ref
    assert (ref.name, ref.key) == ("engine-token-41", m.TOKEN_KEY)
    secret: Any = client.CoreV1Api(kube).read_namespaced_secret("engine-token-41", namespace)
    assert base64.b64decode(secret.data[m.TOKEN_KEY]) == b"she_41"
    assert container.resources.requests == {"cpu": "500m", "memory": "512Mi"}
    assert container.resources.limits == {"memory": "1Gi"}
    assert pod.spec.node_name.startswith("kwok-node-")
    assert pod.spec.service_account_name == "engine"
    assert [r.name for r in pod.spec.image_pull_secrets] == ["registry"]
    assert s.collections() == ["41"]
    # Logs come through the API server from the node's kubelet (KWOK's, serving one file in
    # the container runtime's format for every pod).
    (kubeconfig.parent / "pod.log").write_text(
        "2026-11-29T09:00:00.000000000Z stdout F engine 2 ready\n"
        "2026-11-29T09:00:01.000000000Z stderr F heartbeat sent\n"
    )
    assert s.logs("41", "7", 2, 64 * 1024) == "engine 2 ready\nheartbeat sent\n"
    assert s.logs("41", "7", 2, 5) == "sent\n"

    # The same deploy again writes nothing; a changed one changes only what differs.
    wait_until("the controller's last word on the StatefulSets", lambda: all(
        x.status.observed_generation == x.metadata.generation
        and x.status.available_replicas == x.spec.replicas
        for x in _sets(kube, namespace).values()), 60)  # fmt: skip
    versions = {n: x.metadata.resource_version for n, x in _sets(kube, namespace).items()}
    uids = {n: p.metadata.uid for n, p in pods.items()}
    writes = _writes(kube)
    s.deploy(deployment)
    assert _delta(writes, _writes(kube)) == {}
    assert {n: x.metadata.resource_version for n, x in _sets(kube, namespace).items()} == versions
    assert {n: p.metadata.uid for n, p in _pods(kube, namespace).items()} == uids
    writes = _writes(kube)
    s.deploy(Deployment("41", "9", [PlanEngines("7", 2)]))
    assert _delta(writes, _writes(kube)) == {"APPLY": 1, "DELETE": 1}
    wait_until("plan 8 removed and plan 7 scaled to 2", lambda: sorted(_pods(kube, namespace)) == [
        "engines-41-7-0", "engines-41-7-1"], 60)  # fmt: skip
    assert {n: p.metadata.uid for n, p in _pods(kube, namespace).items()} == {
        n: uids[n] for n in ("engines-41-7-0", "engines-41-7-1")}  # fmt: skip

    # A purge issued before the deploy removes nothing; one issued after removes everything.
    deployed_ms = min(e.deployed_ms for e in s.engines("41"))
    writes = _writes(kube)
    assert s.purge("41", deployed_ms) == 0
    assert _delta(writes, _writes(kube)) == {}
    assert s.purge("41", int(time.time() * 1000)) == 2
    assert _delta(writes, _writes(kube)) == {"DELETE": 1}
    wait_until("no StatefulSet and no pod left",
               lambda: not _sets(kube, namespace) and not _pods(kube, namespace), 60)  # fmt: skip
    assert s.purge("41", int(time.time() * 1000)) == 0
    secrets: Any = client.CoreV1Api(kube).list_namespaced_secret(namespace).items
    assert [x for x in secrets if x.metadata.name.startswith("engine-token-")] == []
    assert s.engines("41") == []
    assert s.collections() == []
    assert s.logs("41", "7", 0, 1000) is None


def test_status_follows_the_pods(kubeconfig: Path, kube: Any, namespace: str) -> None:
    core: Any = client.CoreV1Api(kube)
    pool = f"pool-{namespace}"
    s = _scheduler(kubeconfig, namespace, node_selector={**KWOK_NODES, "pool": pool})
    s.deploy(Deployment("5", "1", [PlanEngines("2", 2)]))

    def details() -> list[tuple[str, str]]:
        return [(e.phase, e.detail.split(":")[0]) for e in s.engines("5")]

    # No node in the pool yet: the pods wait, and the status says why.
    wait_until("unschedulable engines", lambda: details() == [("starting", "Unschedulable")] * 2,
               60, lambda: f"{s.engines('5')}")  # fmt: skip
    core.patch_node("kwok-node-1", {"metadata": {"labels": {"pool": pool}}})
    try:
        wait_until("engines running once a node joins the pool",
                   lambda: _phases(s.engines("5")) == [("2", 0, "running"), ("2", 1, "running")],
                   60, lambda: f"{s.engines('5')}")  # fmt: skip
        assert {p.spec.node_name for p in _pods(kube, namespace).values()} == {"kwok-node-1"}
        # A pod being deleted (held by a finalizer) is stopping; its replacement runs again.
        name = m.pod_name("5", "2", 0)
        core.patch_namespaced_pod(name, namespace, {"metadata": {"finalizers": ["test/hold"]}})
        core.delete_namespaced_pod(name, namespace)
        wait_until("a stopping engine", lambda: _phases(s.engines("5"))[0] == ("2", 0, "stopping"),
                   30)  # fmt: skip
        core.patch_namespaced_pod(name, namespace, {"metadata": {"finalizers": None}})
        wait_until("its replacement running",
                   lambda: _phases(s.engines("5")) == [("2", 0, "running"), ("2", 1, "running")],
                   60)  # fmt: skip
        # After a purge, engines still going away are listed as stopping until they are gone.
        name = m.pod_name("5", "2", 1)
        core.patch_namespaced_pod(name, namespace, {"metadata": {"finalizers": ["test/hold"]}})
        assert s.purge("5", int(time.time() * 1000)) == 2
        wait_until("the held engine stopping, the other gone",
                   lambda: _phases(s.engines("5")) == [("2", 1, "stopping")], 30,
                   lambda: f"{s.engines('5')}")  # fmt: skip
        core.patch_namespaced_pod(name, namespace, {"metadata": {"finalizers": None}})
        wait_until("no engine left", lambda: s.engines("5") == [], 30)
    finally:
        core.patch_node("kwok-node-1", {"metadata": {"labels": {"pool": None}}})


def test_the_schedulers_role_is_all_it_needs(
    kubeconfig: Path, kube: Any, namespace: str, tmp_path: Path
) -> None:
    """As a service account bound to :data:`RBAC_RULES` only: everything works, nothing more
    is allowed."""
    core: Any = client.CoreV1Api(kube)
    rbac: Any = client.RbacAuthorizationV1Api(kube)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "control"}})
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "control"}, "rules": RBAC_RULES})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "control"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "control"},
        "subjects": [{"kind": "ServiceAccount", "name": "control", "namespace": namespace}],
    })  # fmt: skip
    token = core.create_namespaced_service_account_token(
        "control", namespace, {"spec": {"expirationSeconds": 3600}}).status.token  # fmt: skip
    own = json.loads(kubeconfig.read_text())
    own["users"] = [{"name": "admin", "user": {"token": token}}]
    limited = tmp_path / "kubeconfig"
    limited.write_text(json.dumps(own))

    s = _scheduler(limited, namespace)
    s.deploy(Deployment("3", "1", [PlanEngines("4", 2)]))
    wait_until("engines running", lambda: _phases(s.engines("3")) == [
        ("4", 0, "running"), ("4", 1, "running")], 60)  # fmt: skip
    assert s.collections() == ["3"]
    assert s.logs("3", "4", 1, 100) is not None
    assert s.purge("3", int(time.time() * 1000)) == 2
    # Nothing beyond: another namespace, or secrets.
    elsewhere = _scheduler(limited, "default")
    with pytest.raises(SchedulerError, match="403 Forbidden"):
        elsewhere.engines("3")
    api: Any = config.new_client_from_config(config_file=str(limited))  # type: ignore[no-untyped-call]
    with pytest.raises(ApiException) as denied:
        client.CoreV1Api(api).list_namespaced_secret(namespace)
    assert denied.value.status == 403
    api.close()


def test_through_the_api_deployed_to_the_cluster_and_purged_by_the_streams_gc(
    kubeconfig: Path, kube: Any, namespace: str, workers: Workers,
    harness: Harness, tmp_path: Path, kafka_bootstrap: str, unique: str,
) -> None:  # fmt: skip
    workers.start(GC_IDLE_S="4", ENGINE_LOST_S="2", PURGE_SETTLE_S="5")
    workers.wait_settled()
    api = start_api(
        tmp_path / "api", f"sqlite:///{tmp_path / 'meta.db'}", KAFKA__BOOTSTRAP=kafka_bootstrap,
        KAFKA__TOPIC_PREFIX=unique, SINK__ENABLED="true", SINK__GROUP_ID=f"{unique}-sink",
        RUNS_GROUP_ID=f"{unique}-runs", COMMANDS_GROUP_ID=f"{unique}-commands",
        SCHEDULER__KIND="kubernetes", SCHEDULER__KUBERNETES__KUBECONFIG=str(kubeconfig),
        SCHEDULER__KUBERNETES__NAMESPACE=namespace,
        SCHEDULER__KUBERNETES__NODE_SELECTOR=json.dumps(KWOK_NODES),
        SCHEDULER__KUBERNETES__TOLERATIONS=json.dumps([TOLERATION]),
    )  # fmt: skip
    try:
        _deployed_then_purged_by_the_gc(api, kube, namespace, harness)
    finally:
        api.stop()


def _deployed_then_purged_by_the_gc(
    api: ApiServer, kube: Any, namespace: str, harness: Harness
) -> None:
    collection, plan = make_collection(api, duration_s=60, engines=2)
    with api.client("alice") as c:
        assert c.post(f"/api/collections/{collection}/deploy").status_code == 201
        assert c.post(f"/api/collections/{collection}/deploy").status_code == 200

        def status() -> dict[str, Any]:
            body: dict[str, Any] = c.get(f"/api/collections/{collection}/status").json()
            return body

        wait_until("both engines deployed", lambda: status()["plans"][0]["deployed"] == 2, 60,
                   lambda: f"{status()}")  # fmt: skip
        body = status()
        assert body["scheduler"] == "kubernetes"
        engines = [(e["engine_id"], e["phase"]) for e in body["engines"]]
        assert engines == [(f"{collection}-{plan}-{i}", "running") for i in range(2)]
    assert sorted(_pods(kube, namespace)) == [m.pod_name(str(collection), str(plan), i)
                                              for i in range(2)]  # fmt: skip
    # The engines' sidecars would heartbeat "idle"; KWOK runs nothing, so the harness does.
    harness.deploy(str(collection), engines=2)
    wait_until("the GC to purge the idle collection from the cluster",
               lambda: not _sets(kube, namespace) and not _pods(kube, namespace), 90,
               lambda: f"{api.log.read_text()[-3000:]}")  # fmt: skip
    with api.client("alice") as c:
        launch = c.get(f"/api/collections/{collection}/launches").json()["items"][0]
    assert launch["purged_at"] is not None
    assert launch["purge_reason"].startswith("idle for ")
