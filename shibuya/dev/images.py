"""The project's container images built on this machine with podman, from the Dockerfiles users
build with Docker (docs/containers.md).

Registries of images may be out of reach; the upstream bases (``python:3.11.7-slim-bookworm``,
``node:20…``) are then stood in for by Debian bookworm bases made here with ``mmdebstrap`` and
``podman import``, trusting this machine's extra certificate authorities (its HTTPS egress may be
inspected). The Dockerfiles take them as build arguments. An image is rebuilt only when its
inputs changed: their hash is the image's ``shibuya.inputs`` label.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shibuya.dev.kafka import KAFKA_VERSION
from shibuya.dev.maven import cache_root
from shibuya.dev.procs import ServiceError

VERSION = "0.1.0"
PROMETHEUS_VERSION = "2.42.0"  # Debian 12's package
PACKAGES = ("podman", "buildah", "runc", "mmdebstrap")
SUITE = "bookworm"
EXTRA_CAS = Path("/usr/local/share/ca-certificates")
INPUTS_LABEL = "shibuya.inputs"
IGNORED = {"__pycache__", "node_modules"}
# podman from Debian 12 on a hybrid cgroup layout: crun fails on setrlimit there, runc works,
# once podman stops asking for its default ulimits.
CONTAINERS_CONF = '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n'


@dataclass(frozen=True)
class Base:
    """A Debian base image standing in for an upstream one."""

    name: str
    packages: tuple[str, ...]

    def ref(self) -> str:
        return f"localhost/shibuya-base-{self.name}:{SUITE}-{_digest(self._inputs())[:12]}"

    def _inputs(self) -> list[tuple[str, bytes]]:
        cas = sorted(EXTRA_CAS.glob("*.crt")) if EXTRA_CAS.is_dir() else []
        return [("packages", " ".join(self.packages).encode())] + [
            (p.name, p.read_bytes()) for p in cas
        ]


BASES = {
    "python": Base("python", ("python3", "python3-venv", "python-is-python3", "ca-certificates")),
    "node": Base("node", ("nodejs", "npm", "ca-certificates")),
}


@dataclass(frozen=True)
class Image:
    repository: str
    dockerfile: str
    target: str
    """The Dockerfile's stage to build ("": its last)."""
    sources: tuple[str, ...]
    """Paths under the repository root the Dockerfile copies (its inputs, with itself)."""
    bases: Mapping[str, str]
    """Build argument → the local base standing in for its upstream image."""
    version: str = VERSION

    def ref(self) -> str:
        return f"{self.repository}:{self.version}"


PROJECT = ("pyproject.toml", "README.md", "constraints.txt", "wire", "streams", "control",
           "engine_sidecar", "shibuya")  # fmt: skip
CONTROLLER = (*PROJECT, "web/package.json", "web/package-lock.json")
TO_CONTROLLER = {"PYTHON_IMAGE": "python", "NODE_IMAGE": "node"}
TO_PYTHON = {"PYTHON_IMAGE": "python"}
TO_DEBIAN = {"BASE_IMAGE": "python"}  # any Debian 12 base does; this one is here already
CONTROLLER_FILE, ENGINE_FILE = "docker/controller.Dockerfile", "docker/engine.Dockerfile"
IMAGES = {
    "controller": Image("shibuya-controller", CONTROLLER_FILE, "controller", CONTROLLER,
                        TO_CONTROLLER),
    "controller-embedded": Image("shibuya-controller-embedded", CONTROLLER_FILE, "embedded",
                                 CONTROLLER, TO_CONTROLLER),
    "engine": Image("shibuya-engine", ENGINE_FILE, "jmeter", PROJECT, TO_PYTHON),
    "engine-locust": Image("shibuya-engine-locust", ENGINE_FILE, "locust", PROJECT, TO_PYTHON),
    "engine-gatling": Image("shibuya-engine-gatling", ENGINE_FILE, "gatling", PROJECT, TO_PYTHON),
    # Stand-ins for upstream images of the compose stack (docker-compose.local.yml).
    "kafka": Image("shibuya-kafka", "docker/kafka.Dockerfile", "", ("docker/kafka",), TO_DEBIAN,
                   KAFKA_VERSION),
    "prometheus": Image("shibuya-prometheus", "docker/prometheus.Dockerfile", "", (), TO_DEBIAN,
                        PROMETHEUS_VERSION),
}  # fmt: skip


def repo_root() -> Path:
    """The checkout the images are built from (where this package was installed from)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "docker" / "engine.Dockerfile").is_file():
        raise ServiceError(f"{root} is not a checkout of this project: no docker/ to build from")
    return root


def missing_tools() -> list[str]:
    return [t for t in PACKAGES if shutil.which(t) is None]


def podman_env() -> dict[str, str]:
    """The environment podman runs in here: ``CONTAINERS_CONF`` names the settings above (unless
    the caller set one)."""
    env = dict(os.environ)
    if "CONTAINERS_CONF" not in env:
        conf = cache_root() / "containers.conf"
        if not conf.is_file() or conf.read_text() != CONTAINERS_CONF:
            conf.parent.mkdir(parents=True, exist_ok=True)
            conf.write_text(CONTAINERS_CONF)
        env["CONTAINERS_CONF"] = str(conf)
    return env


def podman(*args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    """``podman ARGS``; raises with podman's own words when it fails. Not captured, its output
    goes to stderr (a command's own output stays on stdout)."""
    out = {"capture_output": True} if capture else {"stdout": sys.stderr}
    result = subprocess.run(
        ["podman", *args], env=podman_env(), text=True, check=False, stdin=subprocess.DEVNULL, **out
    )
    if result.returncode != 0:
        said = (result.stderr or "")[-3000:] if capture else "(its output is above)"
        raise ServiceError(f"podman {' '.join(args[:2])} … failed ({result.returncode}): {said}")
    return result


def found(ref: str) -> tuple[str, str] | None:
    """The image's id and the inputs it was built from (its label), if it is here."""
    fmt = f'{{{{ .Id }}}} {{{{ index .Labels "{INPUTS_LABEL}" }}}}'
    argv = ["podman", "image", "inspect", "--format", fmt, ref]
    out = subprocess.run(argv, env=podman_env(), capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return None
    ident, _, inputs = out.stdout.strip().partition(" ")
    return ident, inputs


def base(kind: str, *, quiet: bool = True) -> str:
    """The local base of ``kind`` (python, node), made with mmdebstrap unless already here."""
    spec = BASES[kind]
    ref = spec.ref()
    if found(ref) is not None:
        return ref
    _say(quiet, f"making the Debian {SUITE} base {ref} with mmdebstrap")
    with tempfile.TemporaryDirectory() as tmp:
        tar = Path(tmp) / "base.tar"
        cas = sorted(EXTRA_CAS.glob("*.crt")) if EXTRA_CAS.is_dir() else []
        hooks = []
        if cas:
            names = " ".join(str(p) for p in cas)
            hooks = [f"--customize-hook=copy-in {names} {EXTRA_CAS}/",
                     '--customize-hook=chroot "$1" update-ca-certificates']  # fmt: skip
        argv = ["mmdebstrap", "--variant=minbase", f"--include={','.join(spec.packages)}",
                *hooks, *(["--quiet"] if quiet else []), SUITE, str(tar)]  # fmt: skip
        if subprocess.run(argv, check=False, capture_output=quiet).returncode != 0:
            raise ServiceError(f"mmdebstrap could not make the {kind} base: {' '.join(argv)}")
        podman("import", "--change", 'CMD ["bash"]', str(tar), ref, capture=True)
    return ref


def inputs_of(image: Image, root: Path, base_refs: Mapping[str, str]) -> str:
    """A hash of everything the image is built from: its Dockerfile, the files it copies (not
    caches), its target and its bases."""
    parts: list[tuple[str, bytes]] = [("target", image.target.encode())]
    parts += [(arg, ref.encode()) for arg, ref in sorted(base_refs.items())]
    for rel in (image.dockerfile, *image.sources):
        parts += [(str(p.relative_to(root)), p.read_bytes()) for p in _files(root / rel)]
    return _digest(parts)[:16]


def build(name: str, *, quiet: bool = True) -> str:
    """The image ``name`` of :data:`IMAGES`, built unless built from the same inputs; its ref."""
    image, root = IMAGES[name], repo_root()
    base_refs = {arg: base(kind, quiet=quiet) for arg, kind in image.bases.items()}
    inputs = inputs_of(image, root, base_refs)
    before = found(image.ref())
    if before is not None and before[1] == inputs:
        return image.ref()
    stage = f", target {image.target}" if image.target else ""
    _say(quiet, f"building {image.ref()} ({image.dockerfile}{stage})")
    args = [f"--build-arg={arg}={ref}" for arg, ref in base_refs.items()]
    target = ["--target", image.target] if image.target else []
    podman("build", "--isolation=chroot", "--layers", "-f", str(root / image.dockerfile),
           *target, *args, "--label", f"{INPUTS_LABEL}={inputs}",
           "-t", image.ref(), *(["--quiet"] if quiet else []), str(root),
           capture=quiet)  # fmt: skip
    if before is not None and before[0] != image_id(image.ref()):
        # The image it replaces goes (unless a container uses it); the build's layer cache stays.
        subprocess.run(["podman", "rmi", before[0]], env=podman_env(), capture_output=True,
                       check=False)  # fmt: skip
    return image.ref()


def require_tools() -> None:
    missing = missing_tools()
    if missing:
        raise ServiceError(f"needs {', '.join(missing)}: apt-get install {' '.join(PACKAGES)}")


def build_all(names: Iterable[str], *, quiet: bool = True) -> list[str]:
    require_tools()
    return [build(n, quiet=quiet) for n in names]


def image_id(ref: str) -> str:
    return podman("image", "inspect", "--format", "{{ .Id }}", ref, capture=True).stdout.strip()


def size_mb(ref: str) -> float:
    out = podman("image", "inspect", "--format", "{{ .Size }}", ref, capture=True).stdout
    return int(out.strip()) / 1e6


def _files(path: Path) -> Sequence[Path]:
    """The files under ``path`` a build copies (.dockerignore leaves out caches and the report's
    assets, which the controller's build fetches itself)."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and not IGNORED & set(p.parts)
                  and "results/assets" not in p.as_posix())  # fmt: skip


def _digest(parts: Iterable[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for name, data in parts:
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr)
