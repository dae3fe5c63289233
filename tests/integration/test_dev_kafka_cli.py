"""``shibuya dev kafka start|status|stop`` (and ``start --secure``): a second real broker,
driven through the CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from control.schedulers.processes import alive
from shibuya.dev import kafka_io
from shibuya.dev.kafka import KafkaBroker
from shibuya.dev.procs import ServiceError, free_port, port_open
from wire import KafkaAccess


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


def test_a_secure_start_takes_only_the_principals_it_names(tmp_path: Path) -> None:
    port, cport = free_port(), free_port()
    data = tmp_path / "k"
    where = ["--data-dir", str(data), "--port", str(port), "--controller-port", str(cport)]
    started = _cli("start", "--secure", *where)
    assert started.returncode == 0, started.stderr
    assert "SASL_PLAINTEXT, SCRAM-SHA-512" in started.stdout
    try:
        credentials = json.loads((data / "credentials.json").read_text())
        assert set(credentials) == {"admin", "api", "worker", "sidecar"}
        assert (data / "credentials.json").stat().st_mode & 0o777 == 0o600
        assert (data / "server.properties").stat().st_mode & 0o777 == 0o600
        broker = KafkaBroker(data, port=port, controller_port=cport, secure=True)
        asyncio.run(kafka_io.create_topics(broker.access("admin"), ["shibuya.results.v1"], 1))

        async def publish(access: KafkaAccess) -> None:
            async with kafka_io.producer(access) as p:
                await p.send_and_wait("shibuya.results.v1", b"x")

        asyncio.run(publish(broker.access("sidecar")))  # granted by the start
        with pytest.raises(ServiceError):  # no credentials: not even a connection
            asyncio.run(publish(KafkaAccess(f"127.0.0.1:{port}")))
        assert _cli("status", *where).returncode == 0  # a secure broker stays secure
    finally:
        assert _cli("stop", *where).stdout.strip() == "stopped"
