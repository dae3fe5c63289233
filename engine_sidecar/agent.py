"""The engine agent: acts on start and stop commands, runs the plan's engine (JMeter, Locust:
:mod:`engine_sidecar.engines`), publishes its results.

State of the engine: idle → preparing → running → (stopping →) finished | failed → idle again
for the next run. Each command is acted on once: its id is remembered (on disk, so a restarted
sidecar remembers too), and a repeated command has no second effect. Every change of state is
announced at once as an engine status, besides the periodic heartbeats.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from engine_sidecar.engines import EngineProcess, Engines, Gone
from engine_sidecar.errors import DownloadError, PlanError
from engine_sidecar.heartbeat import Snapshot
from engine_sidecar.publisher import (
    BatchSender,
    Identity,
    Limits,
    PublisherMetrics,
    ResultPublisher,
)
from engine_sidecar.rundir import RunDir, RunRecord, SeenCommands
from wire import (
    Command,
    DecodeError,
    EngineState,
    PurgeEngines,
    StartEngines,
    StopEngines,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentConfig:
    collection_id: str
    plan_id: str
    engine_index: int
    engine_id: str
    work_dir: Path
    results_topic: str
    engines: Engines
    limits: Limits = field(default_factory=Limits)
    max_command_age_s: float = 600
    """Commands issued longer ago than this (say, before a long outage) are ignored."""
    engine_token: str = field(default="", repr=False)
    """What plan files are fetched with (the start command carries no secret)."""


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        sender: BatchSender,
        registry: CollectorRegistry,
        announce: Callable[[], Awaitable[None]],
    ) -> None:
        self.config = config
        self._sender = sender
        self._metrics = PublisherMetrics(registry)
        self._announce = announce
        self._state = EngineState.IDLE
        self._run_id: str | None = None
        self._command_id: str | None = None
        self._exit_code: int | None = None
        self._detail = ""
        self._engine: EngineProcess | None = None
        self._publisher: ResultPublisher | None = None
        self._run_task: asyncio.Task[None] | None = None
        self.spawn: Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]] = (
            lambda coro, name: asyncio.create_task(coro, name=name)
        )
        """How a run's task is started: the entry point puts runs in its task group, so one
        that fails stops the sidecar instead of going unnoticed."""
        self._seen = SeenCommands(config.work_dir / "commands-seen.json")
        self._rejected = Counter(
            "shibuya_sidecar_commands_rejected",
            "messages on the commands topic that are not a valid command",
            registry=registry,
        )

    # --- what the heartbeat reports -------------------------------------------------------

    def snapshot(self) -> Snapshot:
        p = self._publisher
        behind = p.behind() if p else ""
        return Snapshot(
            state=self._state,
            run_id=self._run_id,
            command_id=self._command_id,
            threads=p.threads if p else 0,
            samples_published=p.samples_published if p else 0,
            malformed_lines=p.errors.count if p else 0,
            exit_code=self._exit_code,
            detail=f"{self._detail}; {behind}" if behind else self._detail,
            unpublished_bytes=p.unpublished_bytes if p and behind else 0,
        )

    @property
    def engine_pid(self) -> int | None:
        return self._engine.pid if self._engine else None

    # --- commands -------------------------------------------------------------------------

    async def handle(self, item: Command | DecodeError) -> None:
        if isinstance(item, DecodeError):
            self._rejected.inc()
            log.warning("skipped a message on the commands topic: %s", item)
            return
        c = self.config
        if item.collection_id != c.collection_id:
            return
        if item.command_id in self._seen:
            log.info("command %s was handled before; no second effect", item.command_id)
            return
        self._seen.remember(item.command_id)
        age_s = time.time() - item.issued_ms / 1000
        if age_s > c.max_command_age_s:
            log.warning("command %s is %.0fs old; ignored", item.command_id, age_s)
            return
        match item:
            case StartEngines() if item.plan_id == c.plan_id:
                await self._start(item)
            case StopEngines() if item.run_id == self._run_id and item.plan_id in (None, c.plan_id):
                await self._stop(item)
            case PurgeEngines() | StartEngines() | StopEngines():
                pass  # another plan's, another run's, or the scheduler's business

    async def _start(self, cmd: StartEngines) -> None:
        if self._run_task is not None and not self._run_task.done():
            log.warning("start %s refused: busy with run %s", cmd.command_id, self._run_id)
            return
        if self.config.engine_index >= cmd.engine_count:
            log.info(
                "run %s needs %d engines; engine %d sits it out",
                cmd.run_id,
                cmd.engine_count,
                self.config.engine_index,
            )
            return
        self._run_id, self._command_id = cmd.run_id, cmd.command_id
        self._exit_code, self._detail, self._publisher = None, "", None
        self._run_task = self.spawn(self._run(cmd), f"run {cmd.run_id}")

    async def _stop(self, cmd: StopEngines) -> None:
        self._command_id = cmd.command_id
        if self._engine is not None and self._state is EngineState.RUNNING:
            await self._set(EngineState.STOPPING, cmd.reason)
            await self._engine.stop()

    async def shutdown(self) -> None:
        """SIGTERM: stop JMeter gracefully, let the results drain, report the end. Results
        Kafka does not take are retried until it does, or until the process is killed (the
        run's folder keeps them for the next start)."""
        if self._engine is not None and self._state is EngineState.RUNNING:
            await self._set(EngineState.STOPPING, "sidecar shutting down")
            await self._engine.stop()
        if self._run_task is not None:
            if self._publisher is not None and self._publisher.behind():
                log.error("shutting down while %s; still trying until stopped by force — the "
                          "run's folder keeps them for the next start",
                          self._publisher.behind())  # fmt: skip
            await self._run_task

    # --- one run --------------------------------------------------------------------------

    async def _run(self, cmd: StartEngines) -> None:
        c = self.config
        run_dir = RunDir(c.work_dir, cmd.run_id)
        await self._set(EngineState.PREPARING, f"{len(cmd.files)} files")
        try:
            await asyncio.to_thread(run_dir.prepare, cmd, c.engine_index, c.engine_token)
        except (DownloadError, OSError) as exc:
            log.error("run %s cannot start: %s", cmd.run_id, exc)
            await self._set(EngineState.FAILED, str(exc))
            return
        publisher, stop_publishing, publishing = self._publish(run_dir, cmd.run_id, cmd.plan_id)
        try:
            self._engine = await c.engines.start(cmd, c.engine_index, run_dir)
        except (PlanError, OSError) as exc:
            stop_publishing.set()
            await publishing
            log.error("run %s cannot start: %s", cmd.run_id, exc)
            await self._set(EngineState.FAILED, f"{cmd.engine.value} did not start: {exc}")
            return
        run_dir.save(RunRecord(cmd.run_id, cmd.plan_id, cmd.command_id, self._engine.pid,
                               engine=cmd.engine.value))  # fmt: skip
        await self._set(EngineState.RUNNING, f"pid {self._engine.pid}")
        await self._follow(run_dir, publisher, stop_publishing, publishing, recovered=False)

    def _publish(
        self, run_dir: RunDir, run_id: str, plan_id: str
    ) -> tuple[ResultPublisher, asyncio.Event, asyncio.Task[None]]:
        c = self.config
        self._publisher = ResultPublisher(
            path=run_dir.jtl,
            checkpoint_path=run_dir.checkpoint,
            identity=Identity(run_id, plan_id, c.engine_id),
            producer=self._sender,
            topic=c.results_topic,
            metrics=self._metrics,
            limits=c.limits,
        )
        stop = asyncio.Event()
        return self._publisher, stop, asyncio.create_task(self._publisher.run(stop))

    async def _follow(
        self,
        run_dir: RunDir,
        publisher: ResultPublisher,
        stop_publishing: asyncio.Event,
        publishing: asyncio.Task[None],
        *,
        recovered: bool,
    ) -> None:
        """Until the engine exits; then publish what is left and say how the run ended."""
        assert self._engine is not None
        self._exit_code = await self._engine.wait()
        stop_publishing.set()
        self._engine = None
        # Every line the engine wrote is published before we say "finished", however long Kafka is
        # away (the heartbeats say how far behind we are). Until then the run is not ended on
        # disk: a sidecar stopped meanwhile publishes the rest when it starts again.
        await publishing
        run_dir.end()
        detail = "; ".join(
            filter(None, [f"{publisher.samples_published} samples", publisher.errors.summary()])
        )
        if recovered:
            detail += "; followed again after a sidecar restart, exit code unknown"
        if self._exit_code in (0, None):
            await self._set(EngineState.FINISHED, detail)
        elif self._state is EngineState.STOPPING:  # we stopped it, by force in the end
            await self._set(EngineState.FINISHED, f"{detail}; stopped, exit {self._exit_code}")
        else:
            await self._set(
                EngineState.FAILED, f"{detail}; the engine exited with {self._exit_code}"
            )

    async def recover(self) -> None:
        """After a restart: follow a run whose engine still runs, or publish what it left."""
        for run_dir, record in RunDir.unfinished(self.config.work_dir):
            engine = self.config.engines.adopt(record.engine, record.jmeter_pid, run_dir)
            log.warning(
                "run %s was in progress when the sidecar stopped; its engine (%s) %s",
                record.run_id,
                record.engine,
                "still runs" if engine else "is gone",
            )
            self._run_id, self._command_id = record.run_id, record.command_id
            publisher, stop, publishing = self._publish(run_dir, record.run_id, record.plan_id)
            if engine is None:
                stop.set()  # nothing more will be written: publish the rest and end
            self._engine = engine or Gone()
            await self._set(EngineState.RUNNING, f"pid {record.jmeter_pid}, recovered")
            self._run_task = self.spawn(
                self._follow(run_dir, publisher, stop, publishing, recovered=True),
                f"run {record.run_id}",
            )
            return  # one engine runs one run at a time

    async def _set(self, state: EngineState, detail: str) -> None:
        self._state, self._detail = state, detail
        log.info("engine %s: %s (%s)", self.config.engine_id, state.value, detail)
        await self._announce()
