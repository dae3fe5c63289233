"""A stream worker in its own process, as the demo and the tests run it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shibuya.dev.procs import free_port, shibuya_process, tail, terminate


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    log: Path
    metrics_port: int

    @classmethod
    def start(
        cls,
        *,
        bootstrap: str,
        app_id: str,
        data_dir: Path,
        log: Path,
        topic_prefix: str = "shibuya",
        partitions: int | None = None,
        settings: dict[str, str] | None = None,
        detach: bool = False,
    ) -> WorkerProcess:
        """``settings``: more ``SHIBUYA_WORKER_*`` variables, e.g. ``{"WINDOW_GRACE_S": "2"}``."""
        port = free_port()
        env = {
            **os.environ,
            "SHIBUYA_WORKER_KAFKA__BOOTSTRAP": bootstrap,
            "SHIBUYA_WORKER_KAFKA__TOPIC_PREFIX": topic_prefix,
            "SHIBUYA_WORKER_APP_ID": app_id,
            "SHIBUYA_WORKER_DATA_DIR": str(data_dir.resolve()),
            "SHIBUYA_WORKER_METRICS_PORT": str(port),
        }
        env.update({f"SHIBUYA_WORKER_{k}": v for k, v in (settings or {}).items()})
        if partitions is not None:
            env["SHIBUYA_WORKER_KAFKA__PARTITIONS"] = str(partitions)
        proc = shibuya_process("worker", "run", env=env, log=log, detach=detach)
        return cls(proc=proc, log=log, metrics_port=port)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def stop(self, timeout_s: float = 30) -> bool:
        """SIGTERM, then SIGKILL after ``timeout_s``. True if it stopped gracefully."""
        if self.exited():
            return True
        graceful = terminate(self.proc.pid, timeout_s)
        self.proc.wait()
        return graceful

    def kill(self) -> None:
        if not self.exited():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log, lines)

    def metrics(self) -> dict[str, float]:
        """The worker's Prometheus samples by series; empty when it does not answer."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as resp:
            return dict(_samples(resp.read().decode()))
        return {}


def _samples(text: str) -> Iterator[tuple[str, float]]:
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            yield series, float(value)
