"""Agent mode end to end: start and stop commands over the real broker, real JMeter, real files.

A small file server stands in for the control API (it checks the per-run token); the sidecar
downloads the plan, rewrites it, runs JMeter, publishes every sample and reports each state.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from shibuya.dev import kafka_io, target
from shibuya.dev.jmeter import install
from streams.wire import (
    Command,
    EngineStatus,
    PlanFile,
    StartEngines,
    StopEngines,
    Topic,
    collection_key,
    decode_message,
    encode_message,
    topic_name,
)
from tests.integration.sidecar_support import (
    EXAMPLE_JMX,
    consume_published,
    reference_samples,
    stop_process,
)

TOKEN = "run-token-123"


@pytest.fixture
def file_server() -> Iterator[tuple[str, dict[str, bytes], list[str]]]:
    """Serves ``files[name]`` at ``<base>/<name>`` to requests bearing TOKEN; logs refusals."""
    files: dict[str, bytes] = {}
    refused: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.lstrip("/")
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                refused.append(name)
                self.send_response(401)
                self.end_headers()
                return
            body = files.get(name)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", files, refused
    finally:
        server.shutdown()
        server.server_close()


def _topics(bootstrap: str, prefix: str) -> tuple[str, str, str]:
    """The commands, results and engine-status topics of this test, created."""
    names = tuple(
        topic_name(t, prefix) for t in (Topic.COMMANDS, Topic.RESULTS, Topic.ENGINE_STATUS)
    )
    asyncio.run(kafka_io.create_topics(bootstrap, names, 2))
    return names[0], names[1], names[2]


def _agent_env(bootstrap: str, prefix: str, work: Path, target_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "SHIBUYA_SIDECAR_KAFKA__BOOTSTRAP": bootstrap,
        "SHIBUYA_SIDECAR_KAFKA__TOPIC_PREFIX": prefix,
        "SHIBUYA_SIDECAR_WORK_DIR": str(work),
        "SHIBUYA_SIDECAR_HEALTH_PORT": "0",
        "SHIBUYA_SIDECAR_HEARTBEAT_INTERVAL_S": "1",
        "SHIBUYA_SIDECAR_ENGINE__COLLECTION_ID": "coll-1",
        "SHIBUYA_SIDECAR_ENGINE__PLAN_ID": "plan-1",
        "SHIBUYA_SIDECAR_JMETER__HOME": str(install()),
        "SHIBUYA_SIDECAR_JMETER__HEAP": "256m",
        "SHIBUYA_SIDECAR_JMETER__PROPERTIES": f'{{"target.port": "{target_port}"}}',
    }


def _plan_file(base: str, files: dict[str, bytes], name: str, data: bytes) -> PlanFile:
    files[name] = data
    return PlanFile(
        name=name,
        url=f"{base}/{name}",
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _start(
    command_id: str, run_id: str, plan_files: list[PlanFile], duration_s: int
) -> StartEngines:
    return StartEngines(
        command_id=command_id,
        collection_id="coll-1",
        run_id=run_id,
        plan_id="plan-1",
        engine_count=1,
        threads_per_engine=2,
        ramp_up_s=0,
        duration_s=duration_s,
        files=plan_files,
        file_token=TOKEN,
        issued_ms=int(time.time() * 1000),
    )


async def _send(bootstrap: str, topic: str, *commands: Command) -> None:
    async with kafka_io.producer(bootstrap) as p:
        for c in commands:
            await p.send_and_wait(topic, encode_message(c), key=collection_key(c.collection_id))


async def _statuses_until(
    bootstrap: str, topic: str, done: object, timeout_s: float = 90
) -> list[EngineStatus]:
    """Engine statuses from the start of the topic until ``done(statuses)`` holds."""
    out: list[EngineStatus] = []
    assert callable(done)
    try:
        async with (
            asyncio.timeout(timeout_s),
            kafka_io.read_from_start(bootstrap, topic) as records,
        ):
            async for r in records:
                assert r.value is not None
                out.append(decode_message(r.value, EngineStatus))
                if done(out):
                    return out
    except TimeoutError:
        pytest.fail(f"statuses so far: {[(s.state.value, s.command_id, s.detail) for s in out]}")
    return out


def _transitions(statuses: list[EngineStatus], command_id: str) -> list[str]:
    """The states a command went through, heartbeats repeating a state folded."""
    states: list[str] = []
    for s in statuses:
        if s.command_id == command_id and (not states or states[-1] != s.state.value):
            states.append(s.state.value)
    return states


def test_start_and_stop_commands_run_jmeter_and_publish_everything(
    kafka_bootstrap: str,
    unique: str,
    tmp_path: Path,
    file_server: tuple[str, dict[str, bytes], list[str]],
) -> None:
    base, files, refused = file_server
    commands, results, status = _topics(kafka_bootstrap, unique)
    plan = [
        _plan_file(base, files, "plan.jmx", EXAMPLE_JMX.read_bytes()),
        _plan_file(base, files, "users.csv", b"id,name\n1,a\n2,b\n"),
    ]
    work = tmp_path / "work"
    with target.serve(fail_every=25) as target_port:
        env = _agent_env(kafka_bootstrap, unique, work, target_port)
        log = tmp_path / "sidecar.log"
        with log.open("wb") as out:
            sidecar = subprocess.Popen(
                [sys.executable, "-m", "shibuya", "sidecar", "run"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            # 1. A run that ends on its own after its duration.
            first = _start("cmd-1", "run-1", plan, duration_s=3)
            asyncio.run(_send(kafka_bootstrap, commands, first))
            statuses = asyncio.run(
                _statuses_until(
                    kafka_bootstrap,
                    status,
                    lambda ss: _transitions(ss, "cmd-1")[-1:] == ["finished"],
                )
            )
            assert _transitions(statuses, "cmd-1") == ["preparing", "running", "finished"]
            assert statuses[-1].exit_code == 0

            # 2. The same command again has no second effect; a stop ends a long run early.
            long_run = _start("cmd-2", "run-2", plan, duration_s=120)
            stop = StopEngines(
                command_id="cmd-3",
                collection_id="coll-1",
                run_id="run-2",
                reason="stopped by a test",
                issued_ms=int(time.time() * 1000),
            )
            asyncio.run(_send(kafka_bootstrap, commands, first, long_run))
            asyncio.run(  # stop it mid-run: once samples of it are published
                _statuses_until(
                    kafka_bootstrap,
                    status,
                    lambda ss: any(s.command_id == "cmd-2" and s.samples_published > 0 for s in ss),
                )
            )
            t0 = time.monotonic()
            asyncio.run(_send(kafka_bootstrap, commands, stop))
            statuses = asyncio.run(
                _statuses_until(
                    kafka_bootstrap,
                    status,
                    lambda ss: _transitions(ss, "cmd-3")[-1:] in (["finished"], ["failed"]),
                )
            )
            stopped_in = time.monotonic() - t0
            assert _transitions(statuses, "cmd-1") == ["preparing", "running", "finished"]
            assert _transitions(statuses, "cmd-3") == ["stopping", "finished"]
            assert stopped_in < 60, "the stop command did not end the 120 s run early"
        finally:
            assert stop_process(sidecar) == 0, log.read_text()

    assert refused == []
    # The plan was rewritten for the run, and every sample of both runs was published.
    rewritten = (work / "runs" / "run-1" / "plan.rewritten.jmx").read_text()
    assert '<stringProp name="ThreadGroup.duration">3</stringProp>' in rewritten
    for run_id in ("run-1", "run-2"):
        jtl = work / "runs" / run_id / "results.jtl"
        expected = reference_samples(jtl)
        assert sum(expected.values()) > 0
    both = reference_samples(work / "runs" / "run-1" / "results.jtl") + reference_samples(
        work / "runs" / "run-2" / "results.jtl"
    )
    got = asyncio.run(consume_published(kafka_bootstrap, results, sum(both.values())))
    assert got.samples == both
    assert {run for run in _runs_of(got.batches)} == {"run-1", "run-2"}


def _runs_of(batches: dict[tuple[str, str, int], bytes]) -> set[str]:
    return {run_id for run_id, _, _ in batches}


def test_a_file_that_does_not_match_its_checksum_fails_the_run(
    kafka_bootstrap: str,
    unique: str,
    tmp_path: Path,
    file_server: tuple[str, dict[str, bytes], list[str]],
) -> None:
    base, files, _ = file_server
    commands, _, status = _topics(kafka_bootstrap, unique)
    good = _plan_file(base, files, "plan.jmx", EXAMPLE_JMX.read_bytes())
    files["plan.jmx"] = b"<tampered/>"
    env = {
        **os.environ,
        "SHIBUYA_SIDECAR_KAFKA__BOOTSTRAP": kafka_bootstrap,
        "SHIBUYA_SIDECAR_KAFKA__TOPIC_PREFIX": unique,
        "SHIBUYA_SIDECAR_WORK_DIR": str(tmp_path),
        "SHIBUYA_SIDECAR_HEALTH_PORT": "0",
        "SHIBUYA_SIDECAR_ENGINE__COLLECTION_ID": "coll-1",
        "SHIBUYA_SIDECAR_ENGINE__PLAN_ID": "plan-1",
    }
    sidecar = subprocess.Popen(
        [sys.executable, "-m", "shibuya", "sidecar", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        cid = f"cmd-{uuid.uuid4().hex[:6]}"
        asyncio.run(_send(kafka_bootstrap, commands, _start(cid, "run-x", [good], 5)))
        statuses = asyncio.run(
            _statuses_until(
                kafka_bootstrap, status, lambda ss: _transitions(ss, cid)[-1:] == ["failed"]
            )
        )
        assert "announced" in statuses[-1].detail
        assert "SHA-256" in statuses[-1].detail
    finally:
        assert stop_process(sidecar) == 0


def test_a_sidecar_killed_during_a_run_picks_it_up_again(
    kafka_bootstrap: str,
    unique: str,
    tmp_path: Path,
    file_server: tuple[str, dict[str, bytes], list[str]],
) -> None:
    base, files, _ = file_server
    commands, results, status = _topics(kafka_bootstrap, unique)
    plan = [_plan_file(base, files, "plan.jmx", EXAMPLE_JMX.read_bytes())]
    work = tmp_path / "work"
    with target.serve(fail_every=25) as target_port:
        env = _agent_env(kafka_bootstrap, unique, work, target_port)
        log = tmp_path / "sidecar.log"

        def start_sidecar() -> subprocess.Popen[bytes]:
            with log.open("ab") as out:
                return subprocess.Popen(
                    [sys.executable, "-m", "shibuya", "sidecar", "run"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )

        sidecar = start_sidecar()
        try:
            asyncio.run(_send(kafka_bootstrap, commands, _start("cmd-k", "run-k", plan, 8)))
            asyncio.run(
                _statuses_until(
                    kafka_bootstrap,
                    status,
                    lambda ss: any(s.command_id == "cmd-k" and s.samples_published > 0 for s in ss),
                )
            )
            sidecar.send_signal(signal.SIGKILL)  # JMeter, its child, goes on writing
            sidecar.wait()
            sidecar = start_sidecar()
            statuses = asyncio.run(
                _statuses_until(
                    kafka_bootstrap,
                    status,
                    lambda ss: _transitions(ss, "cmd-k")[-1:] == ["finished"],
                )
            )
            assert "after a sidecar restart" in statuses[-1].detail
            assert "run run-k was in progress when the sidecar stopped; JMeter still runs" in (
                log.read_text()
            )
        finally:
            assert stop_process(sidecar) == 0, log.read_text()

    expected = reference_samples(work / "runs" / "run-k" / "results.jtl")
    got = asyncio.run(consume_published(kafka_bootstrap, results, sum(expected.values())))
    assert got.samples == expected
