"""A broker outage over the end of a run loses nothing, and is nobody's fault.

Real JMeter engines deployed by the API's local scheduler, a real worker, the API's ClickHouse
sink — and a broker of this test's own, SIGKILLed 4 s before the run's end and started again
after the outage. The engines finish while Kafka is away and keep what they could not publish;
the worker cannot listen meanwhile, so it blames no engine; when the broker is back, the engines
publish the rest, and the run ends *finished* with every sample the engines wrote counted.

The 60 s outage runs in the suite; ``SHIBUYA_LONG_TRIALS=1`` adds 90 s and 5 minutes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shibuya.dev import kafka_io
from shibuya.dev.kafka import KafkaBroker
from shibuya.dev.procs import free_port
from tests.support.api import make_collection, start_api
from tests.support.local_runs import Bus, run_on_local_engines
from tests.support.waiting import wait_until
from wire.routing import Topics

DURATION_S, KILL_BEFORE_END_S = 20, 4
OUTAGES_S = [60] + ([90, 300] if os.environ.get("SHIBUYA_LONG_TRIALS") else [])


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    b = KafkaBroker(tmp_path / "kafka", port=free_port(), controller_port=free_port())
    b.start()
    yield b
    b.stop()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("outage_s", OUTAGES_S)
def test_a_broker_outage_over_the_end_of_a_run_loses_nothing(
    outage_s: int, broker: KafkaBroker, tmp_path: Path
) -> None:
    def outage(started: float) -> None:
        wait_until("4 s before the end", lambda: time.monotonic() - started
                   >= DURATION_S - KILL_BEFORE_END_S, DURATION_S)  # fmt: skip
        pid = broker.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_until("the broker to die", lambda: broker.pid() is None, 30)
        time.sleep(outage_s)  # the fault itself: Kafka away for this long
        broker.start()

    ran = run_on_local_engines(tmp_path, Bus(broker.bootstrap), DURATION_S, during=outage)
    run = ran.run
    print(f"outage {outage_s} s: {ran.written} samples written, {run['samples']} counted, "
          f"{run['samples_missing']} missing, outcome {run['outcome']}")  # fmt: skip
    assert ran.written > 0
    assert (run["outcome"], run["samples_missing"]) == ("finished", 0), run["reason"]
    assert run["samples"] == ran.written  # counted by the stream, exactly
    assert run["engines"]["lost"] == 0


def test_requests_that_need_kafka_answer_503_while_it_is_away(
    broker: KafkaBroker, tmp_path: Path
) -> None:
    """A stop and a run's start while the broker is down: each answers 503 within
    ``KAFKA__SEND_TIMEOUT_S`` (the client gives up after 30 s), saying why; the run that could not
    start is failed, so its engines could not fetch its files if its start arrived later."""
    topics = Topics("shibuya")
    asyncio.run(kafka_io.create_topics(broker.bootstrap, [topics.run_events, topics.commands], 1))
    api = start_api(tmp_path / "api", f"sqlite:///{tmp_path / 'meta.db'}",
                    KAFKA__BOOTSTRAP=broker.bootstrap, KAFKA__SEND_TIMEOUT_S="3")  # fmt: skip
    try:
        running, _ = make_collection(api, duration_s=60)
        with api.client("alice") as c:
            started = c.post(f"/api/collections/{running}/runs")
            assert started.status_code == 201, started.text
            run_id = started.json()["id"]
            other = c.post("/api/projects/1/collections", json={"name": "other"}).json()["id"]
            pid = broker.pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            wait_until("the broker to die", lambda: broker.pid() is None, 30)
            stop = c.post(f"/api/runs/{run_id}/stop", json={"reason": "enough"})
            assert stop.status_code == 503, stop.text
            assert "did not take the message within 3 s" in stop.json()["error"]["message"]
            assert c.get(f"/api/runs/{run_id}").json()["ended_at"] is None
            config = c.get(f"/api/collections/{running}/config").text
            mine = config.replace(f"collectionid: {running}", f"collectionid: {other}").replace(
                "name: checkout", "name: other"
            )  # names are unique in a project
            assert c.put(f"/api/collections/{other}/config", content=mine).status_code == 200
            start = c.post(f"/api/collections/{other}/runs")
            assert start.status_code == 503, start.text
            failed = c.get(f"/api/collections/{other}/runs").json()["items"]
            assert [(r["outcome"], r["reason"][:19]) for r in failed] == [
                ("failed", "could not start: Ka")
            ]
    finally:
        api.stop()
