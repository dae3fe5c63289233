"""``shibuya api serve``: the real server process answers its health and metrics endpoints and
runs the ClickHouse sink."""

from __future__ import annotations

import asyncio
import os
import re
import urllib.request
from pathlib import Path

from shibuya.dev import kafka_io
from shibuya.dev.procs import free_port, port_open, shibuya_process
from tests.support.api import start_api
from tests.support.stream import send
from tests.support.waiting import wait_until
from wire import Topic, topic_name


def test_api_serves_health_and_metrics_and_stores_the_streams_rows(
    tmp_path: Path, kafka_bootstrap: str, unique: str
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "SHIBUYA_API_PORT": str(port),
        "SHIBUYA_API_DATA_DIR": str(tmp_path),
        "SHIBUYA_API_KAFKA__BOOTSTRAP": kafka_bootstrap,
        "SHIBUYA_API_KAFKA__TOPIC_PREFIX": unique,
        "SHIBUYA_API_SINK__GROUP_ID": f"{unique}-sink",
    }
    log = tmp_path / "api.log"
    proc = shibuya_process("api", "serve", env=env, log=log)
    try:
        wait_until("the API to listen", lambda: port_open("127.0.0.1", port), 30)
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as resp:
            assert resp.read() == b'{"status":"ok"}'
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
            assert resp.headers["content-type"].startswith("text/plain")
            exposed = resp.read().decode()
        # The one /healthz so far: counted, and timed (docs/api.md, Metrics).
        assert 'shibuya_api_requests_total{code="200",method="GET",route="/healthz"} 1.0' in exposed
        timed = 'shibuya_api_request_duration_seconds_count{method="GET",route="/healthz"} 1.0'
        assert timed in exposed
        # The API process owns ClickHouse and runs the sink: a row on metrics.v1 is stored.
        golden = (Path(__file__).parents[1] / "golden" / "second_metrics_v1.json").read_bytes()
        metrics_topic = topic_name(Topic.METRICS, unique)  # the workers create it
        asyncio.run(kafka_io.create_topics(kafka_bootstrap, [metrics_topic], partitions=2))
        send(kafka_bootstrap, metrics_topic, [(b"run-42", golden)])
        stored = 'shibuya_sink_rows_total{table="metrics_second"} 1.0'

        def metrics_text() -> str:
            with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
                return str(resp.read().decode())

        wait_until(
            "the sink's rows in /metrics", lambda: stored in metrics_text(), 60, metrics_text
        )
    finally:
        proc.terminate()
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert proc.wait(timeout=30) in (0, -15)
    # One format for every record (docs/api.md): the access log, and the API's own INFO ones.
    text, stamp = log.read_text(), r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    access = rf'^{stamp} INFO uvicorn\.access 127\.0\.0\.1:\d+ - "GET /healthz HTTP/1\.1" 200$'
    assert re.search(access, text, re.M), text[-3000:]
    own = rf"^{stamp} INFO control\.results\.schema ClickHouse schema: applied migration 5 "
    assert re.search(own, text, re.M), text[-3000:]
    assert re.search(rf"^{stamp} INFO uvicorn\.error Application shutdown complete", text, re.M)


def test_health_says_which_dependency_fails_and_why(tmp_path: Path) -> None:
    """What ``shibuya doctor`` shows: a dead broker and a missing JMeter, each named."""
    dead, missing = f"127.0.0.1:{free_port()}", str(tmp_path / "none")
    api = start_api(tmp_path, f"sqlite:///{tmp_path / 'meta.db'}", KAFKA__BOOTSTRAP=dead,
                    KAFKA__SEND_TIMEOUT_S="1", SCHEDULER__KIND="local",
                    SCHEDULER__JMETER_HOME=missing)  # fmt: skip
    try:
        with api.client("alice") as c:
            checks = {h["name"]: h for h in c.get("/api/health", timeout=60).json()}
        with api.client(None) as c:
            assert c.get("/api/health").status_code == 401
    finally:
        api.stop()
    assert checks["database"]["ok"] is True
    assert checks["clickhouse"]["ok"] is True
    assert checks["kafka"]["ok"] is False
    assert checks["scheduler (local)"] == {
        "name": "scheduler (local)", "ok": False,
        "detail": f"no JMeter in {tmp_path / 'none'}: shibuya dev jmeter installs it",
    }  # fmt: skip
