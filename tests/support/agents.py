"""Helpers for tests that drive sidecars in agent mode: a file server, commands, statuses."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shibuya.dev import kafka_io
from shibuya.dev.jmeter import install
from tests.support.engines import plan_server
from wire import (
    Command,
    EngineStatus,
    PlanFile,
    StartEngines,
    Topic,
    collection_key,
    decode_message,
    encode_message,
    topic_name,
)

TOKEN = "she_engine-token-123"


def serve_files() -> Iterator[tuple[str, dict[str, bytes], list[str]]]:
    """Plan files over HTTP: (base URL, files by name, names refused for a bad token)."""
    files: dict[str, bytes] = {}
    refused: list[str] = []
    with plan_server(files, TOKEN, refused) as base:
        yield base, files, refused


def topics(bootstrap: str, prefix: str) -> tuple[str, str, str]:
    """The commands, results and engine-status topics of this test, created."""
    names = tuple(
        topic_name(t, prefix) for t in (Topic.COMMANDS, Topic.RESULTS, Topic.ENGINE_STATUS)
    )
    asyncio.run(kafka_io.create_topics(bootstrap, names, 2))
    return names[0], names[1], names[2]


def agent_env(bootstrap: str, prefix: str, work: Path, target_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "SHIBUYA_SIDECAR_KAFKA__BOOTSTRAP": bootstrap,
        "SHIBUYA_SIDECAR_KAFKA__TOPIC_PREFIX": prefix,
        "SHIBUYA_SIDECAR_WORK_DIR": str(work),
        "SHIBUYA_SIDECAR_HEALTH_PORT": "0",
        "SHIBUYA_SIDECAR_HEARTBEAT_INTERVAL_S": "1",
        "SHIBUYA_SIDECAR_ENGINE__COLLECTION_ID": "coll-1",
        "SHIBUYA_SIDECAR_ENGINE_TOKEN": TOKEN,
        "SHIBUYA_SIDECAR_ENGINE__PLAN_ID": "plan-1",
        "SHIBUYA_SIDECAR_JMETER__HOME": str(install()),
        "SHIBUYA_SIDECAR_JMETER__HEAP": "256m",
        "SHIBUYA_SIDECAR_JMETER__PROPERTIES": f'{{"target.port": "{target_port}"}}',
    }


def plan_file(base: str, files: dict[str, bytes], name: str, data: bytes) -> PlanFile:
    files[name] = data
    return PlanFile(
        name=name,
        url=f"{base}/{name}",
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def start_command(
    command_id: str, run_id: str, plan_files: list[PlanFile], duration_s: int, engines: int = 1
) -> StartEngines:
    return StartEngines(
        command_id=command_id,
        collection_id="coll-1",
        run_id=run_id,
        plan_id="plan-1",
        engine_count=engines,
        threads_per_engine=2,
        ramp_up_s=0,
        duration_s=duration_s,
        files=plan_files,
        issued_ms=int(time.time() * 1000),
    )


async def send_commands(bootstrap: str, topic: str, *commands: Command) -> None:
    async with kafka_io.producer(bootstrap) as p:
        for c in commands:
            await p.send_and_wait(topic, encode_message(c), key=collection_key(c.collection_id))


async def statuses_until(
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


def transitions(statuses: list[EngineStatus], command_id: str) -> list[str]:
    """The states a command went through, heartbeats repeating a state folded."""
    states: list[str] = []
    for s in statuses:
        if s.command_id == command_id and (not states or states[-1] != s.state.value):
            states.append(s.state.value)
    return states
