"""A real Prometheus (Debian's ``prometheus`` package) scraping given targets, for the tests.

Scrapes every second into a throw-away TSDB and answers PromQL over its HTTP API.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from control.schedulers.processes import wait_for
from shibuya.dev.procs import ServiceError, free_port, tail, terminate


@dataclass
class Prometheus:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @classmethod
    def start(cls, work_dir: Path, targets: list[str], job: str = "workers") -> Prometheus:
        binary = shutil.which("prometheus")
        if binary is None:
            raise ServiceError("prometheus is not installed (scripts/bootstrap installs it)")
        work_dir.mkdir(parents=True, exist_ok=True)
        config = work_dir / "prometheus.yml"
        config.write_text(
            json.dumps(  # JSON is YAML
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "900ms"},
                    "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}],
                }
            )
        )
        port, log = free_port(), work_dir / "prometheus.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={work_dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        prom = cls(proc=proc, port=port, log=log)
        if not wait_for(prom.ready, timeout_s=30, interval_s=0.2):
            prom.stop()
            raise ServiceError(f"Prometheus did not become ready:\n{tail(log)}")
        return prom

    def _get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
            body: bytes = resp.read()
            return body

    def ready(self) -> bool:
        try:
            self._get("/-/ready")
        except OSError:
            return False
        return True

    def query(self, promql: str) -> list[dict[str, object]]:
        """The result vector of an instant query."""
        data = json.loads(self._get("/api/v1/query?" + urllib.parse.urlencode({"query": promql})))
        if data.get("status") != "success":
            raise ServiceError(f"query {promql!r} failed: {data}")
        result: list[dict[str, object]] = data["data"]["result"]
        return result

    def scalar(self, promql: str) -> float | None:
        """The single value of a query that returns one series (None when it returns none)."""
        result = self.query(promql)
        if not result:
            return None
        value = result[0]["value"]
        assert isinstance(value, list)
        return float(value[1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            terminate(self.proc.pid, 15)
            self.proc.wait()
