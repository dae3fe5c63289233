"""The project's images run with podman for the tests (``shibuya dev images`` builds them).

A container shares the host's network (the tests' broker and target are on its loopback), runs
as its image's non-root user with every capability dropped and no privilege escalation, and with
a read-only root where the chart sets one. ``podman run`` stays attached: its output is the
container's log, and SIGTERM to it reaches the container's process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from shibuya.dev import images
from shibuya.dev.procs import ServiceError, tail, terminate

USER = 10001
"""The images' user (docker/*.Dockerfile), who must own what is mounted writable."""


def built(*names: str) -> dict[str, str]:
    """The images ``names`` (of ``shibuya dev images``), built unless already; skips where podman
    and its helpers are not installed, except in CI (``.ci/run`` installs them)."""
    missing = images.missing_tools()
    if missing and not os.environ.get("CI"):
        pytest.skip(f"needs {', '.join(missing)} (apt-get install {' '.join(images.PACKAGES)})")
    try:
        return dict(zip(names, images.build_all(names), strict=True))
    except ServiceError as exc:
        raise AssertionError(str(exc)) from exc


def writable(folder: Path) -> Path:
    """``folder``, made and given to the images' user (an emptyDir's stand-in)."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chown(folder, USER, USER)
    return folder


@dataclass
class Container:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def running(self) -> bool:
        return self.proc.poll() is None

    def exec(self, *argv: str) -> str:
        """``argv`` run in the container (as its user); its output."""
        out = subprocess.run(["podman", "exec", self.name, *argv], env=images.podman_env(),
                             capture_output=True, text=True, check=False)  # fmt: skip
        assert out.returncode == 0, f"{argv}: {out.stderr}"
        return out.stdout

    def stop(self, timeout_s: float = 20) -> bool:
        """SIGTERM (then SIGKILL); the container is removed. True if it stopped gracefully."""
        graceful = True
        if self.running():
            graceful = terminate(self.proc.pid, timeout_s)
            self.proc.wait()
        subprocess.run(["podman", "rm", "--force", "--time", "0", self.name],
                       env=images.podman_env(), capture_output=True, check=False)  # fmt: skip
        return graceful

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log, lines)


def run(
    name: str,
    image: str,
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    log: Path,
    volumes: Mapping[Path, str] | None = None,
    read_only: bool = False,
    entrypoint: Sequence[str] | None = None,
) -> Container:
    """``image`` as container ``name``, on the host's network; ``volumes``: host folder → path
    in the container; ``read_only``: its root read-only (with a fresh ``/tmp`` unless mounted).
    The environment goes through a file only root reads (a token in it never shows in a process
    list)."""
    if shutil.which("podman") is None:
        raise AssertionError("podman is not installed")
    log.parent.mkdir(parents=True, exist_ok=True)
    env_file = log.with_suffix(".env")
    env_file.touch(mode=0o600)
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    argv = ["podman", "run", "--rm", "--name", name, "--network=host", "--cap-drop=ALL",
            "--security-opt=no-new-privileges", f"--env-file={env_file}"]  # fmt: skip
    if read_only:
        argv += ["--read-only", "--read-only-tmpfs=false"]
        if "/tmp" not in (volumes or {}).values():
            argv.append("--tmpfs=/tmp:rw,nosuid,nodev")
    for host, inside in (volumes or {}).items():
        argv.append(f"--volume={host}:{inside}")
    if entrypoint is not None:
        argv.append(f"--entrypoint={json.dumps(list(entrypoint))}")
    with log.open("ab") as out:
        proc = subprocess.Popen([*argv, image, *command], env=images.podman_env(), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # fmt: skip
    return Container(name=name, proc=proc, log=log)


def image_user(image: str) -> str:
    """The user an image runs as (``USER``)."""
    return images.podman("image", "inspect", "--format", "{{ .Config.User }}", image,
                         capture=True).stdout.strip()  # fmt: skip
