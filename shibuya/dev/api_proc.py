"""The control API in its own process, as the main job and the tests run it, with its users."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from control.schedulers.processes import wait_for
from shibuya.dev.procs import ServiceError, free_port, port_open, shibuya_process, tail, terminate


def api_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of an API keeping its state in ``data_dir``; ``settings`` are more
    ``SHIBUYA_API_*`` variables without the prefix, e.g. ``KAFKA__BOOTSTRAP``."""
    env = {**os.environ, "SHIBUYA_API_DATA_DIR": str(data_dir.resolve())}
    env.update({f"SHIBUYA_API_{k}": v for k, v in settings.items()})
    return env


def add_user(env: dict[str, str], name: str, groups: list[str], *, admin: bool = False) -> str:
    """Create a user in the database that ``env`` names; its token."""
    argv = [sys.executable, "-m", "shibuya", "api", "add-user", name]
    argv += [a for g in groups for a in ("--group", g)] + (["--admin"] if admin else [])
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise ServiceError(f"could not add user {name}: {out.stderr.strip()}")
    return out.stdout.strip()


@dataclass
class ApiProcess:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    @classmethod
    def start(
        cls, env: dict[str, str], log: Path, timeout_s: float = 60, port: int | None = None,
        detach: bool = False,
    ) -> ApiProcess:  # fmt: skip
        """Serve on ``port`` (a free one if not given) of 127.0.0.1; return once it answers."""
        port = port or free_port()
        if port_open("127.0.0.1", port):
            raise ServiceError(f"port {port} is taken by another process")
        env = {**env, "SHIBUYA_API_HOST": "127.0.0.1", "SHIBUYA_API_PORT": str(port)}
        proc = shibuya_process("api", "serve", env=env, log=log, detach=detach)
        api = cls(proc=proc, base=f"http://127.0.0.1:{port}", log=log)
        up = wait_for(lambda: port_open("127.0.0.1", port) or proc.poll() is not None, timeout_s)
        if not up or proc.poll() is not None:
            api.stop()
            raise ServiceError(f"the API did not start:\n{tail(log, 40)}")
        return api

    @property
    def pid(self) -> int:
        return self.proc.pid

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30)

    def stop(self, timeout_s: float = 20) -> None:
        if self.proc.poll() is None:
            terminate(self.proc.pid, timeout_s)
            self.proc.wait()
