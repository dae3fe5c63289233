"""The engines' Kubernetes objects, built without a cluster; and how a pod's state is read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from control.schedulers import SchedulerError
from control.schedulers import manifests as m
from control.schedulers.kube import pod_phase
from control.settings import KubernetesSettings

ENV = {"SHIBUYA_SIDECAR_KAFKA__BOOTSTRAP": "kafka:9092", "SHIBUYA_SIDECAR_KAFKA__TOPIC_PREFIX": "t"}


def _build(k: KubernetesSettings | None = None, **over: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"project_id": "3", "collection_id": "12", "plan_id": "7",
                            "engines": 4, "deployed_ms": 1_700_000_000_000, "env": ENV}  # fmt: skip
    return m.statefulset(k or KubernetesSettings(), **{**args, **over})


def _env(body: dict[str, Any]) -> dict[str, Any]:
    container = body["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_one_statefulset_per_plan_with_its_engines_labels_and_index() -> None:
    body = _build()
    assert body["metadata"]["name"] == "engines-12-7"
    assert body["spec"]["replicas"] == 4
    assert body["spec"]["podManagementPolicy"] == "Parallel"
    assert body["spec"]["updateStrategy"] == {"type": "OnDelete"}
    labels = body["spec"]["template"]["metadata"]["labels"]
    assert {k: labels[k] for k in (m.KIND, m.PROJECT, m.COLLECTION, m.PLAN)} == {
        m.KIND: "engine", m.PROJECT: "3", m.COLLECTION: "12", m.PLAN: "7"}  # fmt: skip
    assert body["spec"]["selector"]["matchLabels"] == {
        m.KIND: "engine", m.COLLECTION: "12", m.PLAN: "7"}  # fmt: skip
    assert body["metadata"]["annotations"][m.DEPLOYED_MS] == "1700000000000"
    env = _env(body)
    assert env["SHIBUYA_SIDECAR_ENGINE__COLLECTION_ID"] == "12"
    assert env["SHIBUYA_SIDECAR_ENGINE__PLAN_ID"] == "7"
    assert env["SHIBUYA_SIDECAR_ENGINE__ENGINE_INDEX"] == {
        "fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}}  # fmt: skip
    assert env["SHIBUYA_SIDECAR_KAFKA__BOOTSTRAP"] == "kafka:9092"
    assert env["SHIBUYA_SIDECAR_HEALTH_HOST"] == "0.0.0.0"
    pod = body["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert not {"serviceAccountName", "nodeSelector", "tolerations"} & pod.keys()
    # The selector of the spread constraint is the workload's own.
    assert pod["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"] == (
        body["spec"]["selector"]["matchLabels"])  # fmt: skip


def test_settings_reach_the_pod() -> None:
    k = KubernetesSettings(
        namespace="load", image="reg.example/engine:1.2", image_pull_policy="Always",
        pull_secrets=["reg-cred"], service_account="engine", cpu_request="2", cpu_limit="3",
        memory_request="3Gi", memory_limit="", node_selector={"pool": "load"},
        tolerations=[{"key": "load", "operator": "Exists", "effect": "NoSchedule"}],
        affinity={"nodeAffinity": {}}, labels={"team": "perf"}, annotations={"a": "b"},
        env_from_config_maps=["engine-settings"], env_from_secrets=["kafka-cred"],
    )  # fmt: skip
    body = _build(k, env={**ENV, "SHIBUYA_SIDECAR_ENGINE__PLAN_ID": "not-this"})
    pod = body["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert body["metadata"]["namespace"] == "load"
    assert container["image"] == "reg.example/engine:1.2"
    assert container["imagePullPolicy"] == "Always"
    assert pod["imagePullSecrets"] == [{"name": "reg-cred"}]
    assert pod["serviceAccountName"] == "engine"
    assert container["resources"] == {"requests": {"cpu": "2", "memory": "3Gi"},
                                      "limits": {"cpu": "3"}}  # fmt: skip
    assert pod["nodeSelector"] == {"pool": "load"}
    assert pod["tolerations"] == [{"key": "load", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["affinity"] == {"nodeAffinity": {}}
    assert body["spec"]["template"]["metadata"]["labels"]["team"] == "perf"
    assert body["spec"]["template"]["metadata"]["annotations"]["a"] == "b"
    assert container["envFrom"] == [{"configMapRef": {"name": "engine-settings"}},
                                    {"secretRef": {"name": "kafka-cred"}}]  # fmt: skip
    assert _env(body)["SHIBUYA_SIDECAR_ENGINE__PLAN_ID"] == "7"  # identity is not overridable


def test_the_spec_hash_ignores_when_and_sees_what() -> None:
    def digest(**over: Any) -> str:
        return str(_build(**over)["metadata"]["annotations"][m.SPEC_HASH])

    assert digest() == digest(deployed_ms=5)
    assert digest() != digest(engines=5)
    assert digest() != digest(env={**ENV, "X": "1"})
    assert digest() != digest(k=KubernetesSettings(image="other:1"))


def test_names_are_dns_labels_unique_and_short() -> None:
    long_a, long_b = "a" * 60, "a" * 59 + "b"
    names = {m.workload_name(long_a, "1"), m.workload_name(long_b, "1")}
    assert len(names) == 2
    assert all(len(n) <= 52 and n.replace("-", "").isalnum() and n.islower() for n in names)
    assert m.workload_name("My_Coll", "1") != m.workload_name("my-coll", "1")
    assert m.pod_name("12", "7", 3) == "engines-12-7-3"
    with pytest.raises(SchedulerError, match="label value"):
        m.collection_selector("bad value")


def _pod(phase: str | None, *, ready: bool = False, deleting: bool = False,
         waiting: str | None = None, unschedulable: bool = False) -> client.V1Pod:  # fmt: skip
    conditions = [client.V1PodCondition(type="Ready", status="True" if ready else "False")]
    if unschedulable:
        conditions = [client.V1PodCondition(type="PodScheduled", status="False",
                                            reason="Unschedulable",
                                            message="0/1 nodes are available")]  # fmt: skip
    statuses = None
    if waiting:
        state = client.V1ContainerState(waiting=client.V1ContainerStateWaiting(
            reason=waiting, message="pull access denied"))  # fmt: skip
        statuses = [client.V1ContainerStatus(name="engine", image="i", image_id="", ready=False,
                                             restart_count=0, state=state)]  # fmt: skip
    return client.V1Pod(
        metadata=client.V1ObjectMeta(
            name="p", deletion_timestamp=datetime.now(UTC) if deleting else None),
        status=client.V1PodStatus(phase=phase, conditions=conditions,
                                  container_statuses=statuses),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        (_pod("Running", ready=True), ("running", "")),
        (_pod("Running"), ("starting", "")),
        (_pod("Pending", unschedulable=True),
         ("starting", "Unschedulable: 0/1 nodes are available")),
        (_pod("Pending", waiting="ImagePullBackOff"),
         ("starting", "ImagePullBackOff: pull access denied")),
        (_pod("Running", ready=True, deleting=True), ("stopping", "")),
        (_pod("Failed"), ("exited", "Failed")),
        (_pod("Succeeded"), ("exited", "Succeeded")),
        (_pod("Unknown"), ("unknown", "")),
    ],
)  # fmt: skip
def test_pod_phase(pod: client.V1Pod, expected: tuple[str, str]) -> None:
    assert pod_phase(pod) == expected


@pytest.mark.parametrize(
    ("engine", "image"),
    [("jmeter", "shibuya-engine:0.1.0"), ("locust", "shibuya-engine-locust:0.1.0"),
     ("gatling", "reg.example/gatling:2")],
)  # fmt: skip
def test_each_plans_engines_run_the_image_of_its_engine_type(engine: str, image: str) -> None:
    k = KubernetesSettings(images={"locust": "shibuya-engine-locust:0.1.0",
                                   "gatling": "reg.example/gatling:2"})  # fmt: skip
    body = _build(k, engine=engine)
    assert body["spec"]["template"]["spec"]["containers"][0]["image"] == image
