"""Real engines through the real pipeline: sidecars run JMeter, the worker counts every sample.

Two sidecars in agent mode (engine 0 and 1 of one plan) get one start command over Kafka, run
JMeter against a local target and publish their results; the stream worker's table must then
hold, for each engine, exactly the number of samples in that engine's JTL file. The results
topic exists before the worker starts, with fewer partitions than the worker is configured for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from shibuya.dev import target
from shibuya.dev.engine_counts import engine_counts
from shibuya.dev.jmeter import install
from shibuya.dev.worker_proc import WorkerProcess
from tests.support.agents import (
    TOKEN,
    plan_file,
    send_commands,
    serve_files,
    start_command,
    statuses_until,
    topics,
)
from tests.support.engines import LocalEngines
from tests.support.sidecars import EXAMPLE_JMX, reference_samples
from wire import EngineState, EngineStatus

ENGINES = 2


@pytest.fixture
def file_server() -> Iterator[tuple[str, dict[str, bytes], list[str]]]:
    yield from serve_files()


async def _counted(bootstrap: str, app_id: str, expected: dict[str, int]) -> dict[str, int]:
    counted: dict[str, int] = {}
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(60):
            async with engine_counts(bootstrap, app_id) as updates:
                async for counted in updates:
                    if counted == expected:
                        break
    return counted


@pytest.mark.integration
def test_every_sample_jmeter_writes_is_counted_by_the_worker(
    kafka_bootstrap: str,
    unique: str,
    tmp_path: Path,
    file_server: tuple[str, dict[str, bytes], list[str]],
) -> None:
    base, files, _ = file_server
    commands, _, status = topics(kafka_bootstrap, unique)
    worker = WorkerProcess.start(
        bootstrap=kafka_bootstrap,
        app_id=unique,
        topic_prefix=unique,
        partitions=4,
        data_dir=tmp_path / "worker",
        log=tmp_path / "worker.log",
    )
    engines: LocalEngines | None = None
    try:
        with target.serve(fail_every=20) as target_port:
            engines = LocalEngines(
                bootstrap=kafka_bootstrap,
                work_dir=tmp_path / "engines",
                jmeter_home=install(),
                target_port=target_port,
                collection_id="coll-1",
                plan_id="plan-1",
                count=ENGINES,
                engine_token=TOKEN,
                topic_prefix=unique,
            )
            engines.start()
            plan = [plan_file(base, files, "plan.jmx", EXAMPLE_JMX.read_bytes())]
            command = start_command("cmd-e2e", "run-e2e", plan, duration_s=3, engines=ENGINES)
            asyncio.run(send_commands(kafka_bootstrap, commands, command))

            def all_finished(statuses: list[EngineStatus]) -> bool:
                done = {
                    s.engine_index
                    for s in statuses
                    if s.command_id == "cmd-e2e" and s.state is EngineState.FINISHED
                }
                return done == set(range(ENGINES))

            asyncio.run(statuses_until(kafka_bootstrap, status, all_finished))
    finally:
        if engines is not None:
            assert engines.stop() == [0] * ENGINES
    try:
        expected = {
            f"run-e2e/coll-1-plan-1-{i}": sum(
                reference_samples(
                    tmp_path / "engines" / f"coll-1-plan-1-{i}" / "runs" / "run-e2e" / "results.jtl"
                ).values()
            )
            for i in range(ENGINES)
        }
        assert all(n > 0 for n in expected.values())
        assert asyncio.run(_counted(kafka_bootstrap, unique, expected)) == expected
        # The results topic existed with 2 partitions; the worker, configured for 4, followed it.
        assert "has 2 partitions, not the 4 configured; using 2" in worker.log.read_text()
    finally:
        worker.stop()
