"""``shibuya dev kafka start|status|stop``: a second real broker, driven through the CLI."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from control.schedulers.processes import alive
from shibuya.dev import kafka_io
from shibuya.dev.procs import free_port, port_open


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shibuya", "dev", "kafka", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_start_status_stop(tmp_path: Path) -> None:
    port, cport = free_port(), free_port()
    where = [
        "--data-dir",
        str(tmp_path / "k"),
        "--port",
        str(port),
        "--controller-port",
        str(cport),
    ]

    assert _cli("status", *where).returncode == 1
    started = _cli("start", *where)
    assert started.returncode == 0, started.stderr
    assert f"serving on 127.0.0.1:{port}" in started.stdout
    pid = int((tmp_path / "k" / "kafka.pid").read_text())
    try:
        status = _cli("status", *where)
        assert status.returncode == 0
        assert status.stdout.startswith(f"running: pid {pid}")
        # It really is a broker: topics can be created and listed.
        asyncio.run(kafka_io.create_topics(f"127.0.0.1:{port}", ["cli-check"], partitions=2))
        again = _cli("start", *where)  # idempotent: reuses the running broker
        assert again.returncode == 0
        assert int((tmp_path / "k" / "kafka.pid").read_text()) == pid
    finally:
        stopped = _cli("stop", *where)
    assert stopped.stdout.strip() == "stopped"
    assert not alive(pid)
    assert not port_open("127.0.0.1", port)
    assert _cli("stop", *where).stdout.strip() == "not running"


def test_start_refuses_a_port_taken_by_someone_else(tmp_path: Path, kafka_bootstrap: str) -> None:
    taken = kafka_bootstrap.rpartition(":")[2]
    result = _cli(
        "start",
        "--data-dir",
        str(tmp_path / "k"),
        "--port",
        taken,
        "--controller-port",
        str(free_port()),
    )
    assert result.returncode == 1
    assert f"port {taken} is taken by another process" in result.stderr
