"""A real Kubernetes control plane for tests and CI, without Docker or downloads from GitHub.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler are built from the Go module
proxy, KWOK too: it plays the kubelet of fake nodes (they turn Ready, and pods bound to them turn
Running and Ready; nothing runs in them). Binaries are cached by version under
``~/.cache/shibuya/kube-<versions>/bin``; each process runs on loopback ports, its PID recorded
in the cluster's data directory. docs/dev-services.md tells the recipe and the measured times.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from control.schedulers.processes import alive, spawn, wait_for
from shibuya.dev.maven import cache_root
from shibuya.dev.procs import PidFile, ServiceError, free_port, tail, terminate

KUBERNETES_VERSION = "1.36.3"
ETCD_VERSION = "3.6.16"
KWOK_VERSION = "0.8.0"
HELM_VERSION = "3.22.0"
PROGRAMS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
FAKE_NODE = {"annotation": ("kwok.x-k8s.io/node", "fake"), "label": ("type", "kwok")}
TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
"""What an engine needs to be scheduled on the fake nodes (with ``node_selector {type: kwok}``)."""

STAGES = Path(__file__).parent / "resources" / "kwok-stages.yaml"
_GO_ENV = {"GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}


def bin_dir() -> Path:
    versions = f"kube-{KUBERNETES_VERSION}-etcd-{ETCD_VERSION}-kwok-{KWOK_VERSION}"
    return cache_root() / versions / "bin"


def helm(log: Callable[[str], None] = print) -> Path:
    """The ``helm`` program (the chart's lint, template and tests), built unless cached."""
    path = cache_root() / f"helm-{HELM_VERSION}" / "helm"
    if not path.exists():
        ldflags = f"-s -w -X helm.sh/helm/v3/internal/version.version=v{HELM_VERSION}"
        go_build(path.parent / "build", [f"helm.sh/helm/v3/cmd/helm@v{HELM_VERSION}"],
                  ["helm.sh/helm/v3/cmd/helm"], path, log, ldflags)  # fmt: skip
    return path


TOOLS = Path(__file__).resolve().parents[2] / "tools" / "deploycheck"


def deploycheck(log: Callable[[str], None] = print) -> Path:
    """``tools/deploycheck`` (compose files and Dockerfiles checked with compose-go and BuildKit's
    linter), built unless this version of its source is cached."""
    source = b"".join((TOOLS / f).read_bytes() for f in ("go.mod", "go.sum", "main.go"))
    digest = hashlib.sha256(source).hexdigest()[:12]
    path = cache_root() / f"deploycheck-{digest}" / "deploycheck"
    if not path.exists():
        go_build(TOOLS, [], ["."], path, log)
    return path


def build(log: Callable[[str], None] = print) -> Path:
    """The folder of the five programs, built with Go unless already cached (helm and
    deploycheck too)."""
    helm(log)
    deploycheck(log)
    out = bin_dir()
    if all((out / p).exists() for p in PROGRAMS):
        return out
    out.mkdir(parents=True, exist_ok=True)
    scratch = out.parent / "build"
    if not (out / "etcd").exists():
        go_build(scratch / "etcd", [f"go.etcd.io/etcd/server/v3@v{ETCD_VERSION}"],
                  ["go.etcd.io/etcd/server/v3"], out / "etcd", log)  # fmt: skip
    if not (out / "kwok").exists():
        go_build(scratch / "kwok", [f"sigs.k8s.io/kwok/cmd/kwok@v{KWOK_VERSION}"],
                  ["sigs.k8s.io/kwok/cmd/kwok"], out / "kwok", log)  # fmt: skip
    if not all((out / p).exists() for p in PROGRAMS[1:4]):
        _build_kubernetes(scratch / "kubernetes", out, log)
    return out


def _go(args: list[str], cwd: Path) -> str:
    env = {**os.environ, **_GO_ENV}
    try:
        result = subprocess.run(["go", *args], cwd=cwd, env=env, capture_output=True, text=True,
                                check=False)  # fmt: skip
    except FileNotFoundError as exc:
        raise ServiceError("Go (1.26 or newer) is needed to build the test cluster") from exc
    if result.returncode != 0:
        raise ServiceError(f"go {' '.join(args[:2])} failed:\n{result.stderr[-4000:]}")
    return result.stdout


def _scratch_module(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "go.mod").exists():
        _go(["mod", "init", "local/build"], folder)


def go_build(folder: Path, tools: list[str], packages: list[str], dest: Path,
              log: Callable[[str], None], ldflags: str = "-s -w") -> None:  # fmt: skip
    """``go build`` of ``packages`` in ``folder`` into ``dest``. With ``tools``, ``folder`` is a
    scratch module that requires them (``go get -tool``: the build of a program whose own
    go.mod has replace directives, which ``go install pkg@version`` refuses)."""
    t0 = time.monotonic()
    if tools:
        _scratch_module(folder)
        _go(["get", "-tool", *tools], folder)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _go(["build", "-trimpath", "-ldflags", ldflags, "-o", str(dest), *packages], folder)
    what = " ".join(t.split("@")[0] for t in tools) or folder.name
    log(f"built {what} in {time.monotonic() - t0:.0f}s")


def _build_kubernetes(folder: Path, out: Path, log: Callable[[str], None]) -> None:
    """kube-apiserver, kube-controller-manager and kube-scheduler from ``k8s.io/kubernetes``.

    Its go.mod requires the staging modules (``k8s.io/api`` …) at v0.0.0 and maps them to
    folders of its repository; a consumer maps each to its published twin ``v0.<minor>.<patch>``
    instead. The list of staging modules changes between versions, so it is read from the
    go.mod of the version built.
    """
    v = KUBERNETES_VERSION
    _scratch_module(folder)
    info = json.loads(_go(["mod", "download", "-json", f"k8s.io/kubernetes@v{v}"], folder))
    staging = [
        line.split("=>")[0].strip()
        for line in Path(info["GoMod"]).read_text().splitlines()
        if "=> ./staging/" in line
    ]
    _go(["mod", "edit", *(f"-replace={s}={s}@v0.{v.split('.', 1)[1]}" for s in staging)],
        folder)  # fmt: skip
    programs = [f"k8s.io/kubernetes/cmd/{p}" for p in PROGRAMS[1:4]]
    minor = v.split(".")[1]
    ldflags = " ".join([
        "-s -w",
        f"-X k8s.io/component-base/version.gitVersion=v{v}",
        "-X k8s.io/component-base/version.gitMajor=1",
        f"-X k8s.io/component-base/version.gitMinor={minor}",
        "-X k8s.io/component-base/version.gitTreeState=clean",
        f"-X k8s.io/client-go/pkg/version.gitVersion=v{v}",
    ])  # fmt: skip
    go_build(folder, [f"{p}@v{v}" for p in programs], programs, out, log, ldflags)


@dataclass
class KubeCluster:
    """etcd + API server + controller manager + scheduler + KWOK, state under ``data_dir``."""

    data_dir: Path
    nodes: int = 2
    _spawned: dict[str, int] = field(default_factory=dict)
    """PIDs this object started: our children, stopped even before their command line shows
    (right after a spawn, /proc still shows none, and a PID file's check would miss them)."""

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    @property
    def pod_log(self) -> Path:
        """What every pod's log says (KWOK runs nothing): write to it, read it through the API."""
        return self.data_dir / "pod.log"

    def _pidfile(self, name: str) -> PidFile:
        return PidFile(self.data_dir / f"{name}.pid", marker=str(self.data_dir))

    def running(self) -> bool:
        return all(self._pidfile(p).read() is not None for p in PROGRAMS)

    def start(self, timeout_s: float = 120, log: Callable[[str], None] = print) -> float:
        """Start every process unless the cluster runs; wait until nodes are Ready and the
        controllers work. Returns the seconds taken (not counting a build)."""
        bins = build(log)
        t0 = time.monotonic()
        if self.running():
            return 0.0
        self.stop()
        d = self.data_dir
        shutil.rmtree(d / "etcd", ignore_errors=True)  # a fresh cluster every start
        d.mkdir(parents=True, exist_ok=True)
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd = self._start("etcd", [
            str(bins / "etcd"), "--name", "n0", "--data-dir", str(d / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-cluster", f"n0=http://127.0.0.1:{peer_port}",
            "--listen-metrics-urls", f"http://127.0.0.1:{free_port()}",
            "--unsafe-no-fsync", "--quota-backend-bytes", str(2**30),
            "--auto-compaction-retention", "1",
        ])  # fmt: skip
        self._wait("etcd", etcd, lambda: _get(f"http://127.0.0.1:{etcd_port}/health") is not None,
                   t0 + timeout_s)  # fmt: skip
        token = secrets.token_hex(16)
        (d / "tokens.csv").write_text(f'{token},admin,admin-uid,"system:masters"\n')
        if not (d / "sa.key").exists():
            subprocess.run(["openssl", "genrsa", "-out", str(d / "sa.key"), "2048"],
                           check=True, capture_output=True)  # fmt: skip
        certs = d / "certs"
        apiserver = self._start("kube-apiserver", [
            str(bins / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={api_port}", f"--cert-dir={certs}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={d / 'sa.key'}",
            f"--service-account-signing-key-file={d / 'sa.key'}",
            f"--token-auth-file={d / 'tokens.csv'}", "--authorization-mode=Node,RBAC",
            "--allow-privileged=true", "--endpoint-reconciler-type=none",
            # Logs are fetched from the node's "kubelet": KWOK's server on 127.0.0.1.
            "--kubelet-preferred-address-types=InternalIP",
        ])  # fmt: skip
        server = f"https://127.0.0.1:{api_port}"
        ca = certs / "apiserver.crt"
        self._wait("kube-apiserver", apiserver,
                   lambda: ca.exists() and _get(f"{server}/readyz", ca) == "ok",
                   t0 + timeout_s)  # fmt: skip
        self.kubeconfig.write_text(_kubeconfig(server, ca, token))
        common = [f"--kubeconfig={self.kubeconfig}", "--leader-elect=false",
                  "--bind-address=127.0.0.1", f"--secure-port={free_port()}"]  # fmt: skip
        self._start("kube-controller-manager", [
            str(bins / "kube-controller-manager"), *common,
            f"--service-account-private-key-file={d / 'sa.key'}", f"--root-ca-file={ca}",
            "--kube-api-qps=500", "--kube-api-burst=1000", "--concurrent-statefulset-syncs=10",
        ])  # fmt: skip
        self._start("kube-scheduler", [str(bins / "kube-scheduler"), *common[:3],
                                       f"--secure-port={free_port()}"])  # fmt: skip
        key, value = FAKE_NODE["annotation"]
        kubelet_port = free_port()
        (d / "kwok-logs.yaml").write_text(_cluster_logs(self.pod_log))
        kwok = self._start("kwok", [
            str(bins / "kwok"), f"--kubeconfig={self.kubeconfig}", "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={key}={value}",
            "--cidr=10.0.0.0/24", "--node-ip=127.0.0.1", f"--node-port={kubelet_port}",
            "--node-lease-duration-seconds=40", f"--server-address=127.0.0.1:{kubelet_port}",
            f"--config={STAGES}", f"--config={d / 'kwok-logs.yaml'}",
        ])  # fmt: skip
        self._add_nodes(kwok, t0 + timeout_s)
        return time.monotonic() - t0

    def stop(self) -> None:
        """Stop the processes we started (by PID), newest first."""
        for name in reversed(PROGRAMS):
            pid = self._spawned.pop(name, None) or self._pidfile(name).read()
            if pid is not None:
                terminate(pid, 20)
            self._pidfile(name).clear()

    def _start(self, name: str, argv: list[str]) -> int:
        pid = spawn(argv, log=self.data_dir / f"{name}.log")
        self._spawned[name] = pid
        self._pidfile(name).write(pid)
        return pid

    def _wait(self, name: str, pid: int, ready: Callable[[], bool], deadline: float) -> None:
        """Until ``ready()``; fails when the process exits or the deadline passes. (The PID is
        the one spawned: right after a spawn, /proc may still show the parent's command line.)"""
        log = self.data_dir / f"{name}.log"

        def check() -> bool:
            if not alive(pid):
                raise ServiceError(f"{name} exited during start-up:\n{tail(log)}")
            return ready()

        if not wait_for(check, deadline - time.monotonic(), interval_s=0.2):
            raise ServiceError(f"{name} not ready in time:\n{tail(log)}")

    def _add_nodes(self, kwok: int, deadline: float) -> None:
        """Fake nodes for KWOK; wait until they are Ready and the controller manager has made
        the default service account (its controllers work)."""
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]
        core = client.CoreV1Api(api)
        key, value = FAKE_NODE["annotation"]
        label, label_value = FAKE_NODE["label"]
        for i in range(self.nodes):
            node: dict[str, Any] = {
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": f"kwok-node-{i}", "annotations": {key: value},
                             "labels": {label: label_value,
                                        "kubernetes.io/hostname": f"kwok-node-{i}"}},
                "spec": {"taints": [{"key": key, "value": value, "effect": "NoSchedule"}]},
                "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                           "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}},
            }  # fmt: skip
            core.create_node(node)  # type: ignore[arg-type]

        def ready() -> bool:
            nodes: list[Any] = core.list_node().items
            up = [n for n in nodes
                  if any(c.type == "Ready" and c.status == "True"
                         for c in (n.status.conditions or []))]  # fmt: skip
            accounts: list[Any] = core.list_namespaced_service_account("default").items
            return len(up) == self.nodes and any(a.metadata.name == "default" for a in accounts)

        self._wait("kwok", kwok, ready, deadline)
        api.close()


def _get(url: str, ca: Path | None = None) -> str | None:
    context = ssl.create_default_context(cafile=str(ca)) if ca else None
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as r:  # noqa: S310 - ours
            body: str = r.read().decode()
            return body
    except (OSError, ValueError):
        return None


def _cluster_logs(path: Path) -> str:
    path.touch()
    return json.dumps({
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterLogs",
        "metadata": {"name": "every-pod"},
        "spec": {"logs": [{"containers": [], "logsFile": str(path), "follow": False}]},
    })  # fmt: skip


def _kubeconfig(server: str, ca: Path, token: str) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "dev", "cluster": {"server": server,
                                                 "certificate-authority": str(ca)}}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "admin"}}],
        "current-context": "dev",
    }, indent=2)  # fmt: skip
