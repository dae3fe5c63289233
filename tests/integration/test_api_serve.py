"""``shibuya api serve``: the real server process answers its health and metrics endpoints."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from shibuya.dev.procs import free_port, port_open, wait_for


def test_api_serves_health_and_metrics(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "SHIBUYA_API_PORT": str(port), "SHIBUYA_API_DATA_DIR": str(tmp_path)}
    log = tmp_path / "api.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shibuya", "api", "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        assert wait_for(lambda: port_open("127.0.0.1", port), timeout_s=30)
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as resp:
            assert resp.read() == b'{"status":"ok"}'
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
            assert resp.headers["content-type"].startswith("text/plain")
    finally:
        proc.terminate()
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert proc.wait(timeout=30) in (0, -15)
    assert "Application shutdown complete" in log.read_text()
