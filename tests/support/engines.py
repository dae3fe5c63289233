"""Real engines for tests without the control API: sidecars in agent mode and a plan server
that serves plan files under a run's token, as the API does. The API's own engines are started
by its scheduler (:mod:`control.schedulers.local`)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from shibuya.dev.procs import shibuya_process


@contextlib.contextmanager
def plan_server(
    files: dict[str, bytes], token: str, refused: list[str] | None = None
) -> Iterator[str]:
    """Serve ``files`` at ``<base URL>/<name>`` to requests bearing ``token``; yields the base.

    Names asked for without the token are answered 401 and appended to ``refused``.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.lstrip("/")
            body = files.get(name)
            if self.headers.get("Authorization") != f"Bearer {token}":
                if refused is not None:
                    refused.append(name)
                self.send_response(401)
                body = b""
            else:
                self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, name="plan-server", daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class LocalEngines:
    """``count`` sidecars of one plan, engine indexes 0…count-1, each with its own work folder."""

    def __init__(
        self,
        *,
        bootstrap: str,
        work_dir: Path,
        jmeter_home: Path,
        target_port: int,
        collection_id: str,
        plan_id: str,
        count: int,
        engine_token: str,
        topic_prefix: str = "shibuya",
    ) -> None:
        self.work_dir = work_dir
        self.collection_id, self.plan_id, self.count = collection_id, plan_id, count
        self._env = {
            **os.environ,
            "SHIBUYA_SIDECAR_KAFKA__BOOTSTRAP": bootstrap,
            "SHIBUYA_SIDECAR_KAFKA__TOPIC_PREFIX": topic_prefix,
            "SHIBUYA_SIDECAR_HEALTH_PORT": "0",
            "SHIBUYA_SIDECAR_HEARTBEAT_INTERVAL_S": "1",
            "SHIBUYA_SIDECAR_ENGINE__COLLECTION_ID": collection_id,
            "SHIBUYA_SIDECAR_ENGINE__PLAN_ID": plan_id,
            "SHIBUYA_SIDECAR_ENGINE_TOKEN": engine_token,
            "SHIBUYA_SIDECAR_JMETER__HOME": str(jmeter_home),
            "SHIBUYA_SIDECAR_JMETER__HEAP": "256m",
            "SHIBUYA_SIDECAR_JMETER__PROPERTIES": f'{{"target.port": "{target_port}"}}',
        }
        self._procs: list[subprocess.Popen[bytes]] = []

    def engine_id(self, index: int) -> str:
        return f"{self.collection_id}-{self.plan_id}-{index}"

    def folder(self, index: int) -> Path:
        return self.work_dir / self.engine_id(index)

    def start(self) -> None:
        for index in range(self.count):
            folder = self.folder(index)
            folder.mkdir(parents=True, exist_ok=True)
            env = {
                **self._env,
                "SHIBUYA_SIDECAR_WORK_DIR": str(folder),
                "SHIBUYA_SIDECAR_ENGINE__ENGINE_INDEX": str(index),
            }
            self._procs.append(
                shibuya_process("sidecar", "run", env=env, log=folder / "sidecar.log")
            )

    def stop(self) -> list[int | None]:
        """SIGTERM all, wait; SIGKILL what does not end in 60 s. Exit codes (``None``: killed)."""
        for proc in self._procs:
            proc.terminate()
        codes: list[int | None] = []
        for proc in self._procs:
            try:
                codes.append(proc.wait(timeout=60))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                codes.append(None)
        self._procs = []
        return codes
