"""Entry points of the sidecar: settings → resources → run until SIGTERM, drain, exit.

The long-lived tasks (heartbeats, the commands consumer, each run with its publisher) run in one
``asyncio.TaskGroup``: one that fails stops the others and the process, with a
:class:`~engine_sidecar.errors.TaskCrashedError` naming it in the log and exit status 1 — never a
sidecar that goes on heartbeating while it no longer acts on commands.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
from prometheus_client import CollectorRegistry

from engine_sidecar import health
from engine_sidecar.agent import Agent, AgentConfig
from engine_sidecar.engine import JMeterConfig
from engine_sidecar.engines import Engines
from engine_sidecar.errors import PublishError, TaskCrashedError
from engine_sidecar.gatling import GatlingConfig
from engine_sidecar.heartbeat import EngineRef, Heartbeat, Snapshot
from engine_sidecar.kafka import CommandConsumer, producer
from engine_sidecar.locust import LocustConfig
from engine_sidecar.procstats import CpuMeter, agent_usage, engine_usage
from engine_sidecar.publisher import Identity, Limits, PublisherMetrics, ResultPublisher
from engine_sidecar.settings import BatchSettings, SidecarSettings
from wire import EngineState

log = logging.getLogger(__name__)


def tail(
    settings: SidecarSettings, path: Path, identity: Identity, engine_pid: int | None = None
) -> None:
    """Tail-only mode: publish the results file of an engine this sidecar did not start."""
    os.umask(0o077)  # checkpoints are the engine user's alone
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # aiokafka logs every failed reconnect at ERROR; our own warnings say what is retried.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    asyncio.run(_tail(settings, path, identity, engine_pid))


def _stop_on_signals() -> asyncio.Event:
    """SIGTERM and SIGINT set the returned event: the sidecar then drains and exits.

    pyarrow would otherwise cancel a CSV parse that a signal interrupts (``ArrowCancelled:
    received signal 15``), failing the very drain the signal asks for.
    """
    pa.enable_signal_handlers(False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


class Tasks:
    """The sidecar's task group: :meth:`start` names each task, and a failure of one surfaces
    as the :class:`TaskCrashedError` that stops the process."""

    def __init__(self, group: asyncio.TaskGroup) -> None:
        self._group = group

    def start(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        return self._group.create_task(_named(name, coro), name=name)


async def _named(name: str, coro: Coroutine[Any, Any, None]) -> None:
    try:
        await coro
    except Exception as exc:
        raise TaskCrashedError(name, exc) from exc


@asynccontextmanager
async def supervised() -> AsyncIterator[Tasks]:
    """A task group whose failure ends the process with the failed task named."""
    try:
        async with asyncio.TaskGroup() as group:
            yield Tasks(group)
    except* TaskCrashedError as crashed:
        for exc in crashed.exceptions:
            log.critical("%s; stopping", exc, exc_info=exc.__cause__)
        raise SystemExit(1) from None


async def _tail(
    settings: SidecarSettings, path: Path, identity: Identity, engine_pid: int | None = None
) -> None:
    stop = _stop_on_signals()
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    registry = CollectorRegistry()
    limits = limits_of(settings.batch, give_up_s=settings.tail_give_up_s)
    async with producer(settings.kafka.access, settings.kafka.compression) as p:
        publisher = ResultPublisher(
            path=path,
            checkpoint_path=settings.work_dir / f"checkpoint-{identity.engine_id}.json",
            identity=identity,
            producer=p,
            topic=settings.kafka.topics.results,
            metrics=PublisherMetrics(registry),
            limits=limits,
        )

        def status() -> dict[str, object]:
            return {
                "status": "ok",
                "file": str(path),
                "run_id": identity.run_id,
                "engine_id": identity.engine_id,
                "samples_published": publisher.samples_published,
                "malformed_lines": publisher.errors.count,
                "malformed_first": [
                    {"line": line_no, "reason": reason}
                    for line_no, reason in publisher.errors.samples
                ],
            }

        def snapshot() -> Snapshot:
            return Snapshot(
                state=EngineState.FINISHED if publisher_done.is_set() else EngineState.RUNNING,
                run_id=identity.run_id,
                threads=publisher.threads,
                samples_published=publisher.samples_published,
                malformed_lines=publisher.errors.count,
                detail=publisher.errors.summary(),
            )

        e = settings.engine
        heartbeat = Heartbeat(
            sender=p,
            topic=settings.kafka.topics.engine_status,
            engine=EngineRef(e.collection_id, identity.plan_id, e.engine_index, identity.engine_id),
            snapshot=snapshot,
            meter=CpuMeter(lambda: engine_usage(engine_pid)),
            interval_s=settings.heartbeat_interval_s,
        )
        publisher_done = asyncio.Event()
        async with health.serve(
            settings.health_host, settings.health_port, registry, status
        ) as port:
            log.info("tailing %s as %s (health and metrics on port %d)", path, identity, port)
            async with supervised() as tasks:
                tasks.start(heartbeat.run(publisher_done), "heartbeats")
                try:
                    await publisher.run(stop)
                except PublishError as exc:
                    log.error("%s", exc)
                    raise SystemExit(1) from exc
                finally:
                    publisher_done.set()
            await heartbeat.send_now(exiting=True)  # the last word, with the final counts
        log.info(
            "stopped: %d samples published, %d malformed lines skipped, %d heartbeats sent",
            publisher.samples_published,
            publisher.errors.count,
            heartbeat.sent,
        )


def run(settings: SidecarSettings) -> None:
    """Agent mode: act on commands for this engine, run its engine, publish its results."""
    os.umask(0o077)  # plan copies, results, JMeter's files: the engine user's alone
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    asyncio.run(_run(settings))


async def _run(settings: SidecarSettings) -> None:
    stop = _stop_on_signals()
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    e, k, j = settings.engine, settings.kafka, settings.jmeter
    registry = CollectorRegistry()
    config = AgentConfig(
        collection_id=e.collection_id,
        plan_id=e.plan_id,
        engine_index=e.engine_index,
        engine_id=settings.engine_id,
        work_dir=settings.work_dir,
        results_topic=k.topics.results,
        engines=Engines(
            JMeterConfig(j.home, j.heap, j.stop_port, j.properties),
            LocustConfig(settings.locust.python, settings.locust.stop_timeout_s),
            GatlingConfig(settings.gatling.home, settings.gatling.heap),
        ),
        limits=limits_of(settings.batch),
        max_command_age_s=settings.max_command_age_s,
        engine_token=settings.engine_token.get_secret_value(),
    )
    commands_topic = k.topics.commands
    async with producer(k.access, k.compression) as p:

        async def announce() -> None:
            await heartbeat.send_now()

        agent = Agent(config, p, registry, announce)
        heartbeat = Heartbeat(
            sender=p,
            topic=k.topics.engine_status,
            engine=EngineRef(e.collection_id, e.plan_id, e.engine_index, settings.engine_id),
            snapshot=agent.snapshot,
            meter=CpuMeter(lambda: agent_usage(agent.engine_pid)),
            interval_s=settings.heartbeat_interval_s,
        )

        def health_status() -> dict[str, object]:
            s = agent.snapshot()
            return {
                "status": "ok",
                "engine_id": settings.engine_id,
                "state": s.state.value,
                "run_id": s.run_id,
                "samples_published": s.samples_published,
                "unpublished_bytes": s.unpublished_bytes,
                "detail": s.detail,
            }

        async def consume() -> None:
            group = f"sidecar.{settings.engine_id}"
            async with CommandConsumer(k.access, commands_topic, group) as commands:
                async for item, commit in commands.commands():
                    await agent.handle(item)
                    await commit()

        async with health.serve(
            settings.health_host, settings.health_port, registry, health_status
        ) as port:
            log.info(
                "engine %s waiting for commands on %s (health and metrics on port %d)",
                settings.engine_id,
                commands_topic,
                port,
            )
            async with supervised() as tasks:
                agent.spawn = tasks.start
                await agent.recover()  # before joining the group: a running JMeter waits for no one
                tasks.start(heartbeat.run(stop), "heartbeats")
                consuming = tasks.start(consume(), "commands")
                await stop.wait()
                consuming.cancel()
                await agent.shutdown()
            await heartbeat.send_now(exiting=True)
        log.info("stopped; %d heartbeats sent", heartbeat.sent)


def limits_of(batch: BatchSettings, give_up_s: float | None = None) -> Limits:
    return Limits(max_samples=batch.max_samples, max_interval_ms=batch.max_interval_ms,
                  max_group=batch.max_group, give_up_s=give_up_s)  # fmt: skip
