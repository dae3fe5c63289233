"""A node that runs pods for real: what a kubelet would do with the engine pods KWOK only marks
Running. It watches the pods of a namespace on the real API server and runs each one's container
with podman, as its spec says — image, command, environment (labels and Secrets resolved),
emptyDir volumes, capabilities, privilege escalation, a read-only root — and stops it when the
pod goes.

One difference, said here: pods share the host's network (the tests' broker is on its
loopback), so each container's health port is moved to a free one; probes go to that port.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client

from shibuya.dev.procs import free_port
from tests.support import containers
from tests.support.containers import Container

_LABEL = re.compile(r"^metadata\.labels\['(.+)'\]$")
HEALTH_PORT = "SHIBUYA_SIDECAR_HEALTH_PORT"


@dataclass
class Pod:
    name: str
    container: Container
    work: dict[str, Path]
    """Each emptyDir's folder on the host, by mount path."""
    health_port: int
    probe_path: str

    def ready(self) -> bool:
        """The readiness probe as the kubelet runs it: an HTTP GET answered 2xx/3xx."""
        try:
            answer = httpx.get(f"http://127.0.0.1:{self.health_port}{self.probe_path}", timeout=2)
        except httpx.HTTPError:
            return False
        return 200 <= answer.status_code < 400


@dataclass
class PodmanNode:
    core: Any
    """A ``CoreV1Api`` of the cluster."""
    namespace: str
    folder: Path
    selector: str
    pods: dict[str, Pod] = field(default_factory=dict)
    gone: list[Pod] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def sync(self) -> None:
        """Run the containers of new pods, stop those of pods that went."""
        listed = self.core.list_namespaced_pod(self.namespace, label_selector=self.selector)
        current = {
            p.metadata.name: p for p in listed.items if p.metadata.deletion_timestamp is None
        }
        for name in sorted(set(self.pods) - set(current)):
            pod = self.pods.pop(name)
            pod.container.stop()
            self.gone.append(pod)
        for name in sorted(set(current) - set(self.pods)):
            self.pods[name] = self._run(current[name])

    def _run(self, pod: Any) -> Pod:
        (spec,) = pod.spec.containers
        env = {e.name: self._value(pod, e) for e in spec.env or []}
        for source in spec.env_from or []:
            env.update(self._env_from(source))
        port = free_port()
        env[HEALTH_PORT] = str(port)
        assert pod.spec.security_context.run_as_non_root
        assert containers.image_user(spec.image) not in ("", "0", "root"), spec.image
        security = spec.security_context
        assert security.capabilities.drop == ["ALL"]
        assert security.allow_privilege_escalation is False
        work = {m.mount_path: containers.writable(self.folder / pod.metadata.name / m.name)
                for m in spec.volume_mounts}  # fmt: skip
        container = containers.run(
            f"{self.namespace}-{pod.metadata.name}", spec.image, spec.args or [], env=env,
            log=self.folder / f"{pod.metadata.name}.log", entrypoint=spec.command,
            volumes={host: inside for inside, host in work.items()},
            read_only=bool(security.read_only_root_filesystem),
        )  # fmt: skip
        probe = spec.readiness_probe.http_get
        return Pod(pod.metadata.name, container, work, port, probe.path)

    def _value(self, pod: Any, var: Any) -> str:
        if var.value_from is None:
            return str(var.value or "")
        if var.value_from.field_ref is not None:
            label = _LABEL.match(var.value_from.field_ref.field_path)
            assert label, var.value_from.field_ref.field_path
            return str(pod.metadata.labels[label[1]])
        ref = var.value_from.secret_key_ref
        secret = self.core.read_namespaced_secret(ref.name, self.namespace)
        return base64.b64decode(secret.data[ref.key]).decode()

    def _env_from(self, source: Any) -> dict[str, str]:
        if source.config_map_ref is not None:
            found = self.core.read_namespaced_config_map(source.config_map_ref.name, self.namespace)
            return dict(found.data or {})
        secret = self.core.read_namespaced_secret(source.secret_ref.name, self.namespace)
        return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.sync()
            except Exception as exc:
                self.errors.append(repr(exc))

    def stop(self) -> None:
        self._stop.set()
        for pod in self.pods.values():
            pod.container.stop()


@contextmanager
def podman_node(kube: Any, namespace: str, folder: Path, selector: str) -> Iterator[PodmanNode]:
    """A :class:`PodmanNode` syncing every half second until the block ends."""
    node = PodmanNode(client.CoreV1Api(kube), namespace, folder, selector)
    thread = threading.Thread(target=node._loop, name="podman-node", daemon=True)
    thread.start()
    try:
        yield node
    finally:
        node._stop.set()
        thread.join(30)
        node.stop()
