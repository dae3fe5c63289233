"""The Kubernetes objects of a collection's engines, built by pure functions (no cluster needed).

One StatefulSet per plan, ``spec.replicas`` = the plan's engines. Each pod learns its index from
the label ``apps.kubernetes.io/pod-index`` that the StatefulSet controller sets, through the
downward API. Pods are labelled with project, collection, plan and ``kind=engine``: the purge,
the status and the GC select by these labels. No Service: engines take commands from Kafka and
reach the API for plan files, so nothing needs to reach them (Prometheus scrapes pods).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from control.schedulers import SchedulerError
from control.settings import KubernetesSettings

GROUP = "shibuya.io"
KIND = f"{GROUP}/kind"
PROJECT = f"{GROUP}/project"
COLLECTION = f"{GROUP}/collection"
PLAN = f"{GROUP}/plan"
DEPLOYED_MS = f"{GROUP}/deployed-ms"
SPEC_HASH = f"{GROUP}/spec-hash"
POD_INDEX = "apps.kubernetes.io/pod-index"
"""Set on every pod by the StatefulSet controller (GA since Kubernetes 1.32)."""

ENGINES = f"{KIND}=engine"
"""Label selector of every engine this scheduler made."""

CONTAINER = "engine"
TOKEN_KEY = "engine-token"  # noqa: S105 - the key of the Secret, not a secret
WORK_DIR = "/work"

_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
_MAX_NAME = 52
"""A StatefulSet's name must leave room for the controller's revision label (name-hash, 63)."""


def collection_selector(collection_id: str) -> str:
    return f"{ENGINES},{COLLECTION}={label_value(collection_id)}"


def label_value(value: str) -> str:
    if not _LABEL_VALUE.match(value):
        raise SchedulerError(f"not a valid Kubernetes label value: {value!r}")
    return value


def workload_name(collection_id: str, plan_id: str) -> str:
    """``engines-<collection>-<plan>``, made a DNS label; long names are cut and made unique
    by a hash of the whole."""
    return _dns_label(f"engines-{collection_id}-{plan_id}", f"{collection_id}\0{plan_id}")


def _dns_label(raw: str, unique: str) -> str:
    """``raw`` made a DNS label; a long or altered one is cut and made unique by a hash of
    ``unique``."""
    raw = raw.lower()
    name = re.sub(r"[^a-z0-9-]+", "-", raw).strip("-")
    if len(name) > _MAX_NAME or name != raw:
        digest = hashlib.sha256(unique.encode()).hexdigest()[:8]
        name = f"{name[: _MAX_NAME - 9].rstrip('-')}-{digest}"
    return name


def token_secret_name(collection_id: str) -> str:
    """``engine-token-<collection>``, made a DNS label as the workloads' names are."""
    return _dns_label(f"engine-token-{collection_id}", collection_id)


def token_secret(collection_id: str, token: str) -> dict[str, Any]:
    """The Secret the collection's engines read their engine token from."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": token_secret_name(collection_id),
            "labels": {KIND: "engine-token", COLLECTION: label_value(collection_id)},
        },
        "type": "Opaque",
        "stringData": {TOKEN_KEY: token},
    }


def pod_name(collection_id: str, plan_id: str, index: int) -> str:
    return f"{workload_name(collection_id, plan_id)}-{index}"


def engine_labels(project_id: str, collection_id: str, plan_id: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "shibuya-engine",
        "app.kubernetes.io/managed-by": "shibuya",
        KIND: "engine",
        PROJECT: label_value(project_id),
        COLLECTION: label_value(collection_id),
        PLAN: label_value(plan_id),
    }


def statefulset(
    k: KubernetesSettings,
    *,
    project_id: str,
    collection_id: str,
    plan_id: str,
    engines: int,
    deployed_ms: int,
    env: Mapping[str, str],
    engine: str = "jmeter",
) -> dict[str, Any]:
    """The StatefulSet of one plan's engines, of the image of its ``engine`` type. ``env`` is
    the sidecar's environment shared by every engine (Kafka, topic prefix, extra settings);
    identity and paths are added here.

    The annotation ``shibuya.io/spec-hash`` covers everything but ``deployed-ms``, so a deploy
    can tell that nothing changed and write nothing.
    """
    labels = engine_labels(project_id, collection_id, plan_id)
    selector = {key: labels[key] for key in (KIND, COLLECTION, PLAN)}
    image = k.images.get(engine, k.image)
    body = _statefulset(k, labels, selector, collection_id, plan_id, engines, env, image)
    body["metadata"]["annotations"] = {
        SPEC_HASH: spec_hash(body),
        DEPLOYED_MS: str(deployed_ms),
    }
    return body


def spec_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _statefulset(
    k: KubernetesSettings,
    labels: dict[str, str],
    selector: dict[str, str],
    collection_id: str,
    plan_id: str,
    engines: int,
    env: Mapping[str, str],
    image: str,
) -> dict[str, Any]:
    name = workload_name(collection_id, plan_id)
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": k.namespace, "labels": labels},
        "spec": {
            "replicas": engines,
            # Every engine at once, not one after the other.
            "podManagementPolicy": "Parallel",
            # A changed template never restarts engines that may be in a run; new pods get it.
            "updateStrategy": {"type": "OnDelete"},
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": {**k.labels, **labels},
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(k.health_port),
                        "prometheus.io/path": "/metrics",
                        **k.annotations,
                    },
                },
                "spec": _pod_spec(k, selector, collection_id, plan_id, env, image),
            },
        },
    }


def _pod_spec(
    k: KubernetesSettings,
    selector: dict[str, str],
    collection_id: str,
    plan_id: str,
    env: Mapping[str, str],
    image: str,
) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/healthz", "port": "health"}, "periodSeconds": 10}
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": CONTAINER,
                "image": image,
                "imagePullPolicy": k.image_pull_policy,
                "command": ["shibuya", "sidecar", "run"],
                "env": _env(collection_id, plan_id, k.health_port, env),
                "envFrom": [{"configMapRef": {"name": n}} for n in k.env_from_config_maps]
                + [{"secretRef": {"name": n}} for n in k.env_from_secrets],
                "ports": [{"name": "health", "containerPort": k.health_port}],
                "resources": _resources(k),
                "readinessProbe": {**probe, "failureThreshold": 3},
                "livenessProbe": {**probe, "initialDelaySeconds": 30, "failureThreshold": 6},
                # The engine writes only its work folder and /tmp (the JVM's, Python's): the
                # image itself is read-only (tests/integration/test_images.py runs it so).
                "volumeMounts": [
                    {"name": "work", "mountPath": WORK_DIR},
                    {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the pod's own emptyDir
                ],
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
        "volumes": [{"name": "work", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        # Engines never talk to the Kubernetes API, nor need every Service's address in env.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": k.termination_grace_s,
        # Load generators of one plan compete for a node's CPU and network: spread them.
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector},
            }
        ],
    }
    if k.service_account:
        spec["serviceAccountName"] = k.service_account
    if k.pull_secrets:
        spec["imagePullSecrets"] = [{"name": n} for n in k.pull_secrets]
    if k.node_selector:
        spec["nodeSelector"] = dict(k.node_selector)
    if k.tolerations:
        spec["tolerations"] = list(k.tolerations)
    if k.affinity:
        spec["affinity"] = dict(k.affinity)
    return spec


def _env(
    collection_id: str, plan_id: str, health_port: int, env: Mapping[str, str]
) -> list[dict[str, Any]]:
    fixed: dict[str, str] = {
        **env,
        "SHIBUYA_SIDECAR_ENGINE__COLLECTION_ID": collection_id,
        "SHIBUYA_SIDECAR_ENGINE__PLAN_ID": plan_id,
        "SHIBUYA_SIDECAR_WORK_DIR": WORK_DIR,
        "SHIBUYA_SIDECAR_HEALTH_HOST": "0.0.0.0",  # noqa: S104 - the kubelet probes the pod's IP
        "SHIBUYA_SIDECAR_HEALTH_PORT": str(health_port),
        "PYTHONUNBUFFERED": "1",
    }
    index_label = f"metadata.labels['{POD_INDEX}']"
    index = {"name": "SHIBUYA_SIDECAR_ENGINE__ENGINE_INDEX",
             "valueFrom": {"fieldRef": {"fieldPath": index_label}}}  # fmt: skip
    token = {"name": "SHIBUYA_SIDECAR_ENGINE_TOKEN",
             "valueFrom": {"secretKeyRef": {"name": token_secret_name(collection_id),
                                            "key": TOKEN_KEY}}}  # fmt: skip
    return [*({"name": n, "value": v} for n, v in sorted(fixed.items())), index, token]


def _resources(k: KubernetesSettings) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {
        "requests": {"cpu": k.cpu_request, "memory": k.memory_request}
    }
    limits = {key: v for key, v in (("cpu", k.cpu_limit), ("memory", k.memory_limit)) if v}
    if limits:
        out["limits"] = limits
    return out
