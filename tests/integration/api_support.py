"""The control API as a real server process, with users and their tokens."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shibuya.dev.procs import free_port, port_open, tail, terminate, wait_for

#: Who calls in the tests: an owner, someone of another group, an admin.
USERS = {"alice": ["team-a"], "bob": ["team-b"], "root": ["ops"]}


@dataclass
class ApiServer:
    base: str
    proc: subprocess.Popen[bytes]
    log: Path
    database_url: str
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, who: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            terminate(self.proc.pid, 20)
            self.proc.wait()


def api_env(data_dir: Path, database_url: str, **settings: str) -> dict[str, str]:
    env = {
        **os.environ,
        "SHIBUYA_API_DATA_DIR": str(data_dir),
        "SHIBUYA_API_DATABASE__URL": database_url,
        "SHIBUYA_API_SINK__ENABLED": "false",
    }
    env.update({f"SHIBUYA_API_{k}": v for k, v in settings.items()})
    return env


def add_users(env: dict[str, str]) -> dict[str, str]:
    tokens = {}
    for name, groups in USERS.items():
        argv = [sys.executable, "-m", "shibuya", "api", "add-user", name]
        argv += [a for g in groups for a in ("--group", g)]
        if name == "root":
            argv.append("--admin")
        out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
        tokens[name] = out.stdout.strip()
    return tokens


def start_api(data_dir: Path, database_url: str, **settings: str) -> ApiServer:
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = api_env(data_dir, database_url, PORT=str(port), **settings)
    tokens = add_users(env) if settings.get("AUTH__MODE") != "none" else {}
    log = data_dir / "api.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "shibuya", "api", "serve"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    server = ApiServer(base=f"http://127.0.0.1:{port}", proc=proc, log=log,
                       database_url=database_url, tokens=tokens)  # fmt: skip
    if not wait_for(lambda: port_open("127.0.0.1", port) or proc.poll() is not None, 60) or (
        proc.poll() is not None
    ):
        server.stop()
        raise AssertionError(f"the API did not start:\n{tail(log, 40)}")
    return server
