"""The local stack that stays up: ``shibuya up``, ``down`` and ``doctor``.

``up`` starts, in the background and in sessions of their own, what a load test needs on this
machine — a Kafka broker (SASL/SCRAM and ACLs, unless one answers at the address already), a
stream worker, and the API on 127.0.0.1:8080 with the local scheduler (sandboxed JMeter
engines) and its ClickHouse sink (the embedded engine) — and a user whose token it keeps. The
state lives in ``.shibuya/``: ``stack.json`` says what runs (PIDs with their command lines, to
never signal a recycled PID), and the CLI finds the API and token there when ``SHIBUYA_URL`` and
``SHIBUYA_TOKEN`` are not set. Runs, history, reports and comparisons work between commands.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from shibuya.dev import jmeter, kafka_acls
from shibuya.dev.api_proc import ApiProcess, add_user, api_env
from shibuya.dev.kafka import KafkaBroker
from shibuya.dev.procs import PidFile, free_port, port_open, terminate
from shibuya.dev.worker_proc import WorkerProcess
from wire import KafkaAccess

STATE = "stack.json"
GROUP = "local"


def sidecar_env(properties: dict[str, str] | None = None) -> dict[str, str]:
    """What the local scheduler gives every engine's sidecar: JMeter, its heap and properties."""
    return {
        "SHIBUYA_SIDECAR_JMETER__HOME": str(jmeter.install()),
        "SHIBUYA_SIDECAR_JMETER__HEAP": "256m",
        "SHIBUYA_SIDECAR_JMETER__PROPERTIES": json.dumps(properties or {}),
        "SHIBUYA_SIDECAR_HEARTBEAT_INTERVAL_S": "1",
    }


def local_api_env(
    data_dir: Path, bootstrap: str, access: Callable[[str], KafkaAccess],
    properties: dict[str, str] | None = None,
) -> dict[str, str]:  # fmt: skip
    """An API with the local scheduler and the ClickHouse sink, its state in ``data_dir``."""
    sidecar = access("sidecar")
    return api_env(data_dir, KAFKA__BOOTSTRAP=bootstrap, SCHEDULER__KIND="local",
                   SCHEDULER__SIDECAR_ENV=json.dumps(sidecar_env(properties)),
                   SINK__ENABLED="true", KAFKA__SIDECAR_USERNAME=sidecar.username,
                   KAFKA__SIDECAR_PASSWORD=sidecar.password,
                   **as_principal(access("api")))  # fmt: skip


def as_principal(access: KafkaAccess) -> dict[str, str]:
    """A deployable's Kafka settings (``KAFKA__…``, without its prefix) for ``access``."""
    if not access.sasl:
        return {}
    return {"KAFKA__SECURITY_PROTOCOL": access.protocol, "KAFKA__SASL_MECHANISM": access.mechanism,
            "KAFKA__USERNAME": access.username, "KAFKA__PASSWORD": access.password}  # fmt: skip


def find(start: Path | None = None) -> Path | None:
    """The stack's folder: ``SHIBUYA_HOME``, else ``.shibuya`` here or in a parent folder."""
    if os.environ.get("SHIBUYA_HOME"):
        return Path(os.environ["SHIBUYA_HOME"])
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".shibuya" / STATE).exists():
            return folder / ".shibuya"
    return None


def connection(folder: Path) -> tuple[str, str] | None:
    """The API's URL and the stack user's token, if ``folder`` holds a stack's state."""
    try:
        state = json.loads((folder / STATE).read_text())
        return state["url"], (folder / "token").read_text().strip()
    except (OSError, ValueError, KeyError):
        return None


@dataclass
class Stack:
    data_dir: Path
    bootstrap: str = "127.0.0.1:9092"
    port: int = 8080
    console: Console = field(default_factory=Console)

    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE

    def state(self) -> dict[str, Any]:
        try:
            loaded: dict[str, Any] = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}
        return loaded

    def running(self) -> dict[str, int | None]:
        """Each process of the stack's state: its PID while it runs, else ``None``."""
        return {name: PidFile(self.data_dir / f"{name}.pid", marker).read()
                for name, marker in self.state().get("processes", {}).items()}  # fmt: skip

    def up(self) -> str:
        """Start what is not running; the API's URL."""
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.state() and all(self.running().values()):
            self.console.print(f"The stack is up already: {self.state()['url']}")
            return str(self.state()["url"])
        self.down(quiet=True)
        access, ours = self._kafka()
        worker = WorkerProcess.start(bootstrap=self.bootstrap, app_id="shibuya-streams",
                                     data_dir=self.data_dir / "worker",
                                     log=self.data_dir / "logs" / "worker.log",
                                     settings=as_principal(access("worker")),
                                     detach=True)  # fmt: skip
        self._record("worker", worker.pid, "shibuya worker run", broker=ours,
                     worker_metrics_port=worker.metrics_port)  # fmt: skip
        env = local_api_env(self.data_dir / "api", self.bootstrap, access)
        self._token(env)
        api = ApiProcess.start(env, self.data_dir / "logs" / "api.log", port=self.port,
                               detach=True)  # fmt: skip
        self._record("api", api.pid, "shibuya api serve", url=api.base)
        self.console.print(f"Stream worker: pid {worker.pid}, log {worker.log}")
        clickhouse = self.data_dir / "api" / "clickhouse"
        self.console.print(f"API: {api.base} (pid {api.pid}, log {api.log}); local scheduler, "
                           f"ClickHouse embedded in {clickhouse}")  # fmt: skip
        self.console.print(ui_hint(api.base, self.data_dir), highlight=False)
        return api.base

    def down(self, quiet: bool = False) -> None:
        """Stop what ``up`` started (by the PIDs it recorded), the broker if it started it."""
        for name, pid in self.running().items():
            if pid is not None:
                terminate(pid, 30)
                if not quiet:
                    self.console.print(f"{name}: stopped (pid {pid})")
            PidFile(self.data_dir / f"{name}.pid", "").clear()
        state = self.state()
        if state.get("broker"):
            broker = broker_in(self.data_dir, str(state.get("bootstrap", self.bootstrap)))
            if broker.pid() is not None:
                broker.stop()
                if not quiet:
                    self.console.print("Kafka: stopped")
        self.state_path.unlink(missing_ok=True)

    def _kafka(self) -> tuple[Callable[[str], KafkaAccess], bool]:
        host, _, port = self.bootstrap.rpartition(":")
        if port_open(host, int(port)):
            self.console.print(f"Kafka: using the broker at {self.bootstrap}")
            return (lambda principal: KafkaAccess(self.bootstrap)), False
        broker = broker_in(self.data_dir, self.bootstrap)
        self.console.print(f"Kafka: starting a broker on {self.bootstrap} …")
        seconds = broker.start()
        broker.grant(kafka_acls.acls())
        self.console.print(f"Kafka: ready in {seconds:.1f}s (pid {broker.pid()}); SASL/SCRAM "
                           "and ACLs")  # fmt: skip
        return broker.access, True

    def _record(self, name: str | None, pid: int | None, marker: str | None, **more: Any) -> None:
        state = self.state()
        state.update(more, bootstrap=self.bootstrap)
        if name is not None and pid is not None and marker is not None:
            state.setdefault("processes", {})[name] = marker
            PidFile(self.data_dir / f"{name}.pid", marker).write(pid)
        self.state_path.write_text(json.dumps(state, indent=2))

    def _token(self, env: dict[str, str]) -> str:
        return user_token(self.data_dir, env)

    def is_up(self) -> bool:
        running = self.running()
        return bool(running) and all(running.values())


def broker_in(data_dir: Path, bootstrap: str) -> KafkaBroker:
    """The secured broker kept in ``data_dir/kafka`` (the stack's and the main job's), its
    controller on the same port at every start."""
    port_file = data_dir / "kafka" / "controller.port"
    if not port_file.exists():
        port_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        port_file.write_text(str(free_port()))
    return KafkaBroker(data_dir / "kafka", port=int(bootstrap.rpartition(":")[2]),
                       controller_port=int(port_file.read_text()), secure=True)  # fmt: skip


def ui_hint(base: str, data_dir: Path) -> str:
    """Where the web UI is, and the token file to log in with (not the token)."""
    return f"Web UI: {base}/ui/ (log in with the API token in {data_dir / 'token'})"


def user_token(data_dir: Path, env: dict[str, str]) -> str:
    """The token of this machine's user of the API (this OS user's name, group ``local``) —
    the stack's and the main job's, so each sees the other's runs — made once, kept 0600."""
    path = data_dir / "token"
    if path.exists():
        return path.read_text().strip()
    token = add_user(env, getpass.getuser(), [GROUP], admin=False)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token)
    return token
