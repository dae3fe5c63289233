"""The sidecar publishes every sample JMeter writes, exactly once after dedupe by (engine, seq).

Real JMeter writes the JTL (two samplers whose labels hold a comma and quotes) against a local
HTTP target; the sidecar tails it while it grows; the multiset of samples published to the real
broker must equal the multiset in the file — also when the sidecar is SIGKILLed mid-run and
restarted.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from engine_sidecar.kafka import producer
from engine_sidecar.publisher import Identity, Limits, PublisherMetrics, ResultPublisher
from shibuya.dev import kafka_io, target
from shibuya.dev.kafka import KafkaBroker
from shibuya.dev.procs import free_port, shibuya_process
from tests.support.sidecars import (
    consume_published,
    reference_samples,
    start_jmeter,
    stop_process,
)
from tests.support.waiting import wait_until
from wire import EngineState, EngineStatus, KafkaAccess, Topic, decode_message, topic_name


@pytest.fixture
def http_target() -> Iterator[int]:
    with target.serve(fail_every=25) as port:
        yield port


def test_every_sample_of_a_live_jmeter_run_is_published_once(
    kafka_bootstrap: str, unique: str, tmp_path: Path, http_target: int
) -> None:
    topic = topic_name(Topic.RESULTS, unique)
    jtl = tmp_path / "results.jtl"

    async def scenario() -> int:
        await kafka_io.create_topics(kafka_bootstrap, [topic], partitions=2)
        stop = asyncio.Event()
        async with producer(KafkaAccess(kafka_bootstrap), "lz4") as p:
            publisher = ResultPublisher(
                path=jtl,
                checkpoint_path=tmp_path / "ckpt.json",
                identity=Identity("run-1", "plan-1", "engine-0"),
                producer=p,
                topic=topic,
                metrics=PublisherMetrics(CollectorRegistry()),
                limits=Limits(max_samples=100),
            )
            task = asyncio.create_task(publisher.run(stop))
            jmeter = start_jmeter(jtl, http_target, duration_s=4)
            await asyncio.to_thread(jmeter.wait, 60)
            stop.set()
            await task
            assert publisher.errors.count == 0
            return publisher.samples_published

    published_count = asyncio.run(scenario())
    expected = reference_samples(jtl)
    assert sum(expected.values()) > 100, "JMeter wrote too few samples to mean anything"
    assert published_count == sum(expected.values())
    got = asyncio.run(consume_published(kafka_bootstrap, topic, sum(expected.values())))
    assert got.samples == expected
    assert {label for (_, _, _, _, label, *_) in expected} == {
        'GET /items, "all"',
        'POST /login, "json"',
    }
    assert any(code == "500" for (_, _, _, _, _, code, *_) in expected)
    seqs = sorted(seq for _, _, seq in got.batches)
    assert seqs == list(range(len(seqs))), "batch sequence numbers are 0, 1, 2 … without gaps"


def _sidecar(
    bootstrap: str, prefix: str, work: Path, jtl: Path, log: Path, engine_pid: int
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SHIBUYA_SIDECAR_KAFKA__BOOTSTRAP": bootstrap,
        "SHIBUYA_SIDECAR_KAFKA__TOPIC_PREFIX": prefix,
        "SHIBUYA_SIDECAR_WORK_DIR": str(work),
        "SHIBUYA_SIDECAR_HEALTH_PORT": "0",
        "SHIBUYA_SIDECAR_BATCH__MAX_SAMPLES": "50",
        "SHIBUYA_SIDECAR_HEARTBEAT_INTERVAL_S": "0.5",
        "SHIBUYA_SIDECAR_ENGINE__COLLECTION_ID": "coll-1",
    }
    return shibuya_process("sidecar", "tail", str(jtl), "--run-id", "run-1", "--engine-id",
                           "engine-7", "--plan-id", "plan-1", env=env, log=log)  # fmt: skip


def _next_seq(checkpoint: Path) -> int:
    try:
        seq: int = json.loads(checkpoint.read_text())["next_seq"]
    except (FileNotFoundError, ValueError):
        return 0
    return seq


def test_a_sidecar_killed_mid_run_resumes_without_loss(
    kafka_bootstrap: str, unique: str, tmp_path: Path, http_target: int
) -> None:
    topic = topic_name(Topic.RESULTS, unique)
    status_topic = topic_name(Topic.ENGINE_STATUS, unique)
    asyncio.run(kafka_io.create_topics(kafka_bootstrap, [topic, status_topic], partitions=2))
    jtl, log, work = tmp_path / "results.jtl", tmp_path / "sidecar.log", tmp_path / "work"
    checkpoint = work / "checkpoint-engine-7.json"

    jmeter = start_jmeter(jtl, http_target, duration_s=6)
    sidecar = _sidecar(kafka_bootstrap, unique, work, jtl, log, jmeter.pid)
    try:
        # Kill it once it has published something and JMeter is still writing.
        wait_until("3 batches acknowledged", lambda: _next_seq(checkpoint) >= 3, 30, log.read_text)
        assert jmeter.poll() is None, "JMeter finished before the kill: the test proves nothing"
        _check_health_endpoints(log)
        sidecar.send_signal(signal.SIGKILL)
        sidecar.wait()
        sidecar = _sidecar(kafka_bootstrap, unique, work, jtl, log, jmeter.pid)
        assert jmeter.wait(timeout=60) == 0
    finally:
        assert stop_process(sidecar) == 0, log.read_text()

    expected = reference_samples(jtl)
    got = asyncio.run(consume_published(kafka_bootstrap, topic, sum(expected.values())))
    assert got.samples == expected
    assert "stopped:" in log.read_text()

    statuses = asyncio.run(_statuses(kafka_bootstrap, status_topic))
    assert {s.collection_id for s in statuses} == {"coll-1"}
    running = [s for s in statuses if s.state is EngineState.RUNNING]
    assert any(
        s.cpu_cores is not None and s.cpu_cores > 0 and (s.memory_bytes or 0) > 2**20
        for s in running
    ), "no heartbeat carried JMeter's CPU and memory"
    assert any(s.threads == 2 for s in running)  # the plan's two threads, from allThreads
    last = statuses[-1]
    assert last.state is EngineState.FINISHED
    assert last.exiting  # its last word: the engine went away
    assert not any(s.exiting for s in statuses[:-1])
    assert last.malformed_lines == 0
    assert last.run_id == "run-1"


def _check_health_endpoints(log: Path) -> None:
    [port] = re.findall(r"health and metrics on port (\d+)", log.read_text())
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
        health = json.loads(resp.read())
    assert health["status"] == "ok"
    assert health["engine_id"] == "engine-7"
    assert health["samples_published"] > 0
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        metrics = resp.read().decode()
    assert "shibuya_sidecar_samples_published_total" in metrics
    assert "shibuya_sidecar_malformed_lines_total 0.0" in metrics


async def _statuses(bootstrap: str, topic: str) -> list[EngineStatus]:
    """Every heartbeat until the second sidecar's last (marked exiting)."""
    out: list[EngineStatus] = []
    async with asyncio.timeout(30), kafka_io.read_from_start(bootstrap, topic) as records:
        async for r in records:
            assert r.key == b"coll-1"
            assert r.value is not None
            out.append(decode_message(r.value, EngineStatus))
            if out[-1].exiting:
                return out
    return out


def _metric(log: Path, name: str) -> float:
    [port] = re.findall(r"health and metrics on port (\d+)", log.read_text())[-1:]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def test_a_broker_restart_mid_run_loses_nothing(
    unique: str, tmp_path: Path, http_target: int
) -> None:
    broker = KafkaBroker(tmp_path / "kafka", port=free_port(), controller_port=free_port())
    broker.start()
    try:
        topic = topic_name(Topic.RESULTS, unique)
        status_topic = topic_name(Topic.ENGINE_STATUS, unique)
        asyncio.run(kafka_io.create_topics(broker.bootstrap, [topic, status_topic], partitions=2))
        jtl, log, work = tmp_path / "results.jtl", tmp_path / "sidecar.log", tmp_path / "work"
        jmeter = start_jmeter(jtl, http_target, duration_s=10)
        sidecar = _sidecar(broker.bootstrap, unique, work, jtl, log, jmeter.pid)
        try:
            published = "shibuya_sidecar_samples_published_total"
            wait_until(
                "2 batches acknowledged",
                lambda: _next_seq(work / "checkpoint-engine-7.json") >= 2,
                30,
            )
            broker.stop()
            # JMeter goes on writing while the broker is away: those samples must get through.
            size_at_stop = jtl.stat().st_size
            wait_until("JMeter to write on", lambda: jtl.stat().st_size > size_at_stop + 20_000, 30)
            before = _metric(log, published)
            assert jmeter.poll() is None, "JMeter finished during the outage: restart it sooner"
            broker.start()
            wait_until(
                "a sample published after the broker's restart",
                lambda: _metric(log, published) > before,
                60,
                log.read_text,
            )
            assert jmeter.wait(timeout=60) == 0
        finally:
            assert stop_process(sidecar) == 0, log.read_text()
        expected = reference_samples(jtl)
        got = asyncio.run(consume_published(broker.bootstrap, topic, sum(expected.values())))
        assert got.samples == expected
    finally:
        broker.stop()
