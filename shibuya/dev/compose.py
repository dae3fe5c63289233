"""docker-compose.yml with podman, on a machine without a Docker engine (docs/containers.md).

Docker Compose itself (Apache-2.0) is built from the Go module proxy once, cached by version; it
talks to podman's Docker-compatible API service, started here on a socket of the cache folder
and left running (``shibuya dev compose --stop-service`` ends it). The files are
docker-compose.yml and docker-compose.local.yml, which stands in built images for the ones no
registry serves here.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from control.schedulers.processes import spawn, wait_for
from shibuya.dev import images
from shibuya.dev.kube import go_build
from shibuya.dev.maven import cache_root
from shibuya.dev.procs import PidFile, ServiceError, tail, terminate

COMPOSE_VERSION = "5.6.0"
FILES = ("docker-compose.yml", "docker-compose.local.yml")


def compose_binary(log: Callable[[str], None] = print) -> Path:
    """``docker-compose``, built unless this version is cached."""
    path = cache_root() / f"compose-{COMPOSE_VERSION}" / "docker-compose"
    if not path.exists():
        log(f"building Docker Compose {COMPOSE_VERSION} from the Go module proxy (once)")
        version = f"-s -w -X github.com/docker/compose/v5/internal.Version=v{COMPOSE_VERSION}"
        go_build(path.parent / "build", [f"github.com/docker/compose/v5/cmd@v{COMPOSE_VERSION}"],
                 ["github.com/docker/compose/v5/cmd"], path, log, version)  # fmt: skip
    return path


def _service_dir() -> Path:
    return cache_root() / "podman-service"


def socket_path() -> Path:
    return _service_dir() / "podman.sock"


def _pidfile() -> PidFile:
    return PidFile(_service_dir() / "podman.pid", marker=str(socket_path()))


def start_service(timeout_s: float = 30) -> str:
    """podman's Docker-compatible API on :func:`socket_path`, started unless it runs; its
    ``DOCKER_HOST``."""
    host = f"unix://{socket_path()}"
    if _pidfile().read() is not None and socket_path().exists():
        return host
    _service_dir().mkdir(parents=True, exist_ok=True)
    socket_path().unlink(missing_ok=True)
    log = _service_dir() / "podman.log"
    argv = ["podman", "system", "service", "--time=0", host]
    pid = spawn(argv, log=log, env=images.podman_env())
    _pidfile().write(pid)
    if not wait_for(socket_path().exists, timeout_s):
        raise ServiceError(f"podman's API service did not start:\n{tail(log)}")
    return host


def stop_service() -> bool:
    """End the API service if it runs (containers it started keep running). True if it ran."""
    pid = _pidfile().read()
    if pid is None:
        return False
    terminate(pid, 10)
    _pidfile().clear()
    socket_path().unlink(missing_ok=True)
    return True


def compose(args: Sequence[str], *, root: Path | None = None, check: bool = False,
            capture: bool = False) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``docker compose -f docker-compose.yml -f docker-compose.local.yml ARGS`` in the
    repository, through podman."""
    images.require_tools()
    root = root or images.repo_root()
    env = {**images.podman_env(), "DOCKER_HOST": start_service()}
    files = [a for f in FILES for a in ("-f", str(root / f))]
    argv = [str(compose_binary()), *files, *args]
    result = subprocess.run(argv, cwd=root, env=env, text=True, capture_output=capture,
                            check=False)  # fmt: skip
    if check and result.returncode != 0:
        said = (result.stderr or "")[-3000:] if capture else ""
        raise ServiceError(f"docker compose {' '.join(args[:3])} failed: {said}")
    return result
