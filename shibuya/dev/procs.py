"""Background processes that outlive the command that started them, tracked by PID file.

We only ever signal a PID we recorded, and only while its command line still shows the marker we
started it with, so a recycled PID is never touched.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from control.schedulers.processes import alive, wait_for


class ServiceError(RuntimeError):
    """A development service could not be installed, started or stopped."""


@dataclass(frozen=True)
class PidFile:
    path: Path
    marker: str
    """A string that the process's command line contains, e.g. its config file path."""

    def read(self) -> int | None:
        """The recorded PID if that process is alive and still ours, else ``None``."""
        try:
            pid = int(self.path.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            return None
        return pid if self.marker in cmdline else None

    def write(self, pid: int) -> None:
        self.path.write_text(f"{pid}\n")

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def shibuya_process(
    *args: str, env: Mapping[str, str], log: Path, detach: bool = False
) -> subprocess.Popen[bytes]:
    """``shibuya ARGS`` with this interpreter, in the background, its output appended to
    ``log``; ``detach``: in a session of its own, to outlive the command and its terminal."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "shibuya", *args], env=dict(env),
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=detach)  # fmt: skip


def terminate(pid: int, timeout_s: float) -> bool:
    """SIGTERM, wait up to ``timeout_s``, then SIGKILL. True if it stopped gracefully."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    if wait_for(lambda: not alive(pid), timeout_s):
        return True
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    wait_for(lambda: not alive(pid), 10)
    return False


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
