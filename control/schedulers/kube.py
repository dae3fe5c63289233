"""The Kubernetes scheduler: each plan's engines are one StatefulSet (built by
:mod:`control.schedulers.manifests`), found again by their labels.

API-server load stays low and independent of the engine count: a deploy reads the collection's
StatefulSets once and writes only the plans that changed (server-side apply, one call each); a
status lists the collection's StatefulSets and pods (two calls); a purge lists once and deletes
one StatefulSet per plan, whose pods the garbage collector removes.

Each StatefulSet carries the moment it was deployed (``shibuya.io/deployed-ms``): a purge
removes only StatefulSets deployed before it was issued, and deletes each with its UID as a
precondition, so one re-created in between is never touched.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from control.schedulers import Deployment, EngineInfo, SchedulerError
from control.schedulers import manifests as m
from control.settings import KafkaSettings, KubernetesSettings

log = logging.getLogger(__name__)

FIELD_MANAGER = "shibuya-control"
RBAC_RULES: list[dict[str, list[str]]] = [
    {"apiGroups": ["apps"], "resources": ["statefulsets"],
     "verbs": ["get", "list", "create", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "patch", "delete"]},
]  # fmt: skip
"""Everything the scheduler does in the engines' namespace (a Role's rules; tested against the
API server's RBAC). Server-side apply of a new object needs ``create`` besides ``patch``."""
T = TypeVar("T")


def api_client(k: KubernetesSettings) -> client.ApiClient:
    """A client of the configured cluster: the kubeconfig file, else the pod's service account."""
    configuration = client.Configuration()
    try:
        if k.kubeconfig is not None:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(k.kubeconfig),
                context=k.context or None,
                client_configuration=configuration,
            )
        else:
            config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
    except (config.ConfigException, OSError) as exc:
        raise SchedulerError(f"no Kubernetes configuration: {exc}") from exc
    return client.ApiClient(configuration)


class KubernetesScheduler:
    kind = "kubernetes"

    def __init__(
        self,
        settings: KubernetesSettings,
        *,
        kafka: KafkaSettings,
        env: Mapping[str, str] | None = None,
        api: client.ApiClient | None = None,
    ) -> None:
        self.settings = settings
        self.namespace = settings.namespace
        # The engines' Kafka password would be readable in every StatefulSet: it comes from a
        # Secret (SCHEDULER__KUBERNETES__ENV_FROM_SECRETS), never from here.
        self._env = {**kafka.sidecar_env(with_password=False), **(env or {})}
        self._api = api or api_client(settings)
        self._apps = client.AppsV1Api(self._api)
        self._core = client.CoreV1Api(self._api)

    # --- the interface ---------------------------------------------------------------------

    def describe(self) -> tuple[bool, str]:
        return True, f"engine pods of {self.settings.image} in namespace {self.namespace}"

    def deploy(self, deployment: Deployment) -> None:
        cid = deployment.collection_id
        # The engines read their token from a Secret when they start: pods started before keep
        # the token they had, which stays valid until the purge.
        secret = m.token_secret(cid, deployment.engine_token)
        name = secret["metadata"]["name"]
        self._call(f"apply Secret {name}", self._core.patch_namespaced_secret, name,
                   self.namespace, secret, field_manager=FIELD_MANAGER, force=True,
                   _content_type="application/apply-patch+yaml")  # fmt: skip
        existing = {s.metadata.name: s for s in self._statefulsets(cid)}
        now_ms = int(time.time() * 1000)
        wanted = set()
        for plan in deployment.plans:
            name = m.workload_name(cid, plan.plan_id)
            wanted.add(name)
            current = existing.get(name)
            annotations = (current.metadata.annotations or {}) if current else {}
            body = m.statefulset(
                self.settings, project_id=deployment.project_id, collection_id=cid,
                plan_id=plan.plan_id, engines=plan.engines, env=self._env, engine=plan.engine,
                deployed_ms=int(annotations.get(m.DEPLOYED_MS, now_ms)),
            )  # fmt: skip
            if annotations.get(m.SPEC_HASH) == body["metadata"]["annotations"][m.SPEC_HASH]:
                continue  # as asked already: write nothing
            self._call(f"apply StatefulSet {name}", self._apps.patch_namespaced_stateful_set,
                       name, self.namespace, body, field_manager=FIELD_MANAGER, force=True,
                       _content_type="application/apply-patch+yaml")  # fmt: skip
            log.info("collection %s: StatefulSet %s applied (%d engines)", cid, name,
                     plan.engines)  # fmt: skip
        for name, s in existing.items():
            if name not in wanted:  # a plan no longer in the collection
                self._delete(s)

    def purge(self, collection_id: str, deployed_before_ms: int) -> int:
        removed = 0
        for s in self._statefulsets(collection_id):
            deployed_ms = int((s.metadata.annotations or {}).get(m.DEPLOYED_MS, 0))
            if deployed_ms < deployed_before_ms:
                removed += s.spec.replicas or 0
                self._delete(s)
        if not self._statefulsets(collection_id):  # nothing newer left that needs the token
            name = m.token_secret_name(collection_id)
            try:
                self._core.delete_namespaced_secret(name, self.namespace, _request_timeout=30)
            except ApiException as exc:
                if exc.status != 404:
                    raise _error(f"delete Secret {name}", exc) from exc
        return removed

    def engines(self, collection_id: str) -> list[EngineInfo]:
        sets = self._statefulsets(collection_id)
        pods: list[Any] = self._call("list pods", self._core.list_namespaced_pod, self.namespace,
                                     label_selector=m.collection_selector(collection_id),
                                     ).items  # fmt: skip
        by_name = {p.metadata.name: p for p in pods}
        out = []
        for s in sets:
            plan_id = (s.metadata.labels or {}).get(m.PLAN, "")
            deployed_ms = int((s.metadata.annotations or {}).get(m.DEPLOYED_MS, 0))
            for index in range(s.spec.replicas or 0):
                pod = by_name.pop(f"{s.metadata.name}-{index}", None)
                phase, detail = pod_phase(pod) if pod else ("starting", "no pod yet")
                out.append(EngineInfo(
                    engine_id=f"{collection_id}-{plan_id}-{index}", plan_id=plan_id,
                    index=index, phase=phase, deployed_ms=deployed_ms, detail=detail,
                ))  # fmt: skip
        for pod in by_name.values():  # of a purged plan, or beyond a smaller count: going away
            labels = pod.metadata.labels or {}
            plan_id, index = labels.get(m.PLAN, ""), int(labels.get(m.POD_INDEX, -1))
            phase, detail = pod_phase(pod)
            out.append(EngineInfo(
                engine_id=f"{collection_id}-{plan_id}-{index}", plan_id=plan_id, index=index,
                phase="stopping" if phase == "running" else phase, deployed_ms=0, detail=detail,
            ))  # fmt: skip
        return sorted(out, key=lambda e: (e.plan_id, e.index))

    def collections(self) -> list[str]:
        sets: list[Any] = self._call("list StatefulSets",
                                     self._apps.list_namespaced_stateful_set, self.namespace,
                                     label_selector=m.ENGINES).items  # fmt: skip
        return sorted({(s.metadata.labels or {}).get(m.COLLECTION, "") for s in sets} - {""})

    def logs(self, collection_id: str, plan_id: str, index: int, tail_bytes: int) -> str | None:
        name = m.pod_name(collection_id, plan_id, index)
        try:
            # The API cuts logs from the start (limitBytes) or by lines: ask for enough lines,
            # keep the last bytes.
            text: str = self._core.read_namespaced_pod_log(
                name, self.namespace, container=m.CONTAINER,
                tail_lines=max(1, tail_bytes // 40), _request_timeout=30,
            )  # fmt: skip
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _error(f"read the log of pod {name}", exc) from exc
        data = text.encode()
        return data[-tail_bytes:].decode("utf-8", "replace")

    def kept(self, collection_id: str) -> list[str]:
        # A pod's folder goes with it: the drain limit is terminationGracePeriodSeconds
        # (docs/schedulers.md), within which a stopping sidecar publishes what it holds.
        return []

    # --- helpers ---------------------------------------------------------------------------

    def _statefulsets(self, collection_id: str) -> list[Any]:
        items: list[Any] = self._call(
            "list StatefulSets", self._apps.list_namespaced_stateful_set, self.namespace,
            label_selector=m.collection_selector(collection_id),
        ).items  # fmt: skip
        return items

    def _delete(self, s: Any) -> None:
        options = client.V1DeleteOptions(
            propagation_policy="Background",
            preconditions=client.V1Preconditions(uid=s.metadata.uid),
        )
        try:
            self._apps.delete_namespaced_stateful_set(s.metadata.name, self.namespace,
                                                      body=options)  # fmt: skip
        except ApiException as exc:
            # Gone already (404), or re-created since it was listed (409): not ours to delete.
            if exc.status not in (404, 409):
                raise _error(f"delete StatefulSet {s.metadata.name}", exc) from exc
            return
        log.info("StatefulSet %s deleted", s.metadata.name)

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs, _request_timeout=30)
        except ApiException as exc:
            raise _error(what, exc) from exc
        except OSError as exc:  # urllib3's connection errors
            raise SchedulerError(f"could not {what}: Kubernetes API unreachable: {exc}") from exc


def pod_phase(pod: Any) -> tuple[str, str]:
    """``starting``, ``running`` (Running and Ready), ``stopping``, ``exited`` or ``unknown``,
    with the reason when a pod is not running (unschedulable, image pull, crash loop …)."""
    status = pod.status
    if pod.metadata.deletion_timestamp is not None:
        return "stopping", ""
    phase = status.phase if status else None
    if phase in ("Succeeded", "Failed"):
        return "exited", _why(phase, status.reason, status.message)
    if phase == "Unknown" or phase is None:
        return "unknown", (status.reason or "") if status else ""
    for c in status.container_statuses or []:
        waiting = c.state.waiting if c.state else None
        if waiting is not None and waiting.reason not in (None, "ContainerCreating"):
            return "starting", _why(waiting.reason, waiting.message)
    ready = {c.type: c.status for c in (status.conditions or [])}
    if phase == "Running" and ready.get("Ready") == "True":
        return "running", ""
    for c in status.conditions or []:
        if c.status == "False" and c.reason:
            return "starting", _why(c.reason, c.message)
    return "starting", ""


def _why(*parts: str | None) -> str:
    return ": ".join(p for p in parts if p)


def _error(what: str, exc: ApiException) -> SchedulerError:
    return SchedulerError(f"could not {what}: Kubernetes said {exc.status} {exc.reason}: "
                          f"{_message(exc)}")  # fmt: skip


def _message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message", exc.body))
    except ValueError:
        return str(exc.body)
