"""Engines as the stream sees them, and a reader of what the stream decides.

:class:`Engines` heartbeats like sidecars do (every 0.3 s, keyed by collection) and answers
commands like them: a stop finishes the run's engines (after a delay the test chooses), a purge
ends their heartbeats. The sidecar's own handling of commands is tested against real JMeter in
the sidecar tests; here the stream's decisions are under test. :class:`Decisions` reads every
command, run end and run status the workers commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer

from shibuya.dev import kafka_io
from wire import (
    EngineState,
    EngineStatus,
    PlanSpec,
    PurgeEngines,
    RunEnded,
    RunStarted,
    RunStatus,
    StopEngines,
    Topic,
    collection_key,
    decode_command,
    decode_run_event,
    decode_run_status,
    encode_message,
    run_key,
    topic_name,
)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Engine:
    engine_id: str
    collection_id: str
    run_id: str | None
    state: EngineState
    published: int = 0
    beating: bool = True


class _Loop:
    """An asyncio loop in a thread, for the Kafka clients of a synchronous test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: object, timeout_s: float = 30) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@dataclass
class Decisions:
    """Everything the workers committed on commands, run-events and run-status."""

    stops: list[StopEngines] = field(default_factory=list)
    purges: list[PurgeEngines] = field(default_factory=list)
    ended: list[RunEnded] = field(default_factory=list)
    statuses: dict[str, RunStatus] = field(default_factory=dict)
    ended_statuses: list[RunStatus] = field(default_factory=list)
    """Every status that says its run ended."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stops_of(self, run_id: str) -> list[StopEngines]:
        with self.lock:
            return [s for s in self.stops if s.run_id == run_id]

    def purges_of(self, collection_id: str) -> list[PurgeEngines]:
        with self.lock:
            return [p for p in self.purges if p.collection_id == collection_id]

    def ended_of(self, run_id: str) -> list[RunEnded]:
        with self.lock:
            return [e for e in self.ended if e.run_id == run_id]

    def status(self, run_id: str) -> RunStatus | None:
        with self.lock:
            return self.statuses.get(run_id)


class Harness:
    """Announces runs, heartbeats engines, and reads the stream's decisions."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.bootstrap = bootstrap
        self.topics = {t: topic_name(t, prefix) for t in Topic}
        self.engines: dict[str, Engine] = {}
        self.decisions = Decisions()
        self.finish_delay_s: dict[str, float] = defaultdict(float)
        """Per run, how long its engines take to finish after a stop."""
        self._lock = threading.Lock()
        self._pending: set[asyncio.Future[None]] = set()
        self._io = _Loop()
        self._producer_cm = kafka_io.producer(bootstrap)
        self.producer = self._io.run(self._producer_cm.__aenter__())
        self._tasks: list[asyncio.Task[None]] = []
        self._io.run(self._spawn())

    async def _spawn(self) -> None:
        self._tasks = [asyncio.ensure_future(self._beat()), asyncio.ensure_future(self._read())]

    async def _shutdown(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._producer_cm.__aexit__(None, None, None)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._io.run(self._shutdown())
        self._io.close()

    # --- the control plane's side -------------------------------------------------------

    def start_run(
        self,
        run_id: str,
        collection_id: str,
        *,
        engines: int = 2,
        duration_s: int = 60,
        ramp_up_s: int = 0,
        thresholds: tuple[str, ...] = (),
        state: EngineState = EngineState.RUNNING,
    ) -> RunStarted:
        started = RunStarted(
            run_id=run_id,
            collection_id=collection_id,
            project_id="p1",
            started_ms=now_ms(),
            plans=[
                PlanSpec(
                    plan_id="plan-a",
                    engines=engines,
                    threads_per_engine=10,
                    ramp_up_s=ramp_up_s,
                    duration_s=duration_s,
                )
            ],
            thresholds=list(thresholds),
        )
        self.send(self.topics[Topic.RUN_EVENTS], run_key(run_id), encode_message(started))
        self.add_engines(run_id, collection_id, engines, state)
        return started

    def add_engines(
        self, run_id: str, collection_id: str, engines: int, state: EngineState
    ) -> None:
        """Engines of a run started by someone else (the control API), heartbeating."""
        with self._lock:
            for i in range(engines):
                e = Engine(f"{collection_id}-e{i}", collection_id, run_id, state)
                self.engines[e.engine_id] = e

    def deploy(self, collection_id: str, engines: int = 2) -> None:
        """Idle engines of a collection, heartbeating."""
        with self._lock:
            for i in range(engines):
                e = Engine(f"{collection_id}-e{i}", collection_id, None, EngineState.IDLE)
                self.engines[e.engine_id] = e

    def set_engines(self, prefix: str, **changes: object) -> None:
        with self._lock:
            for e in self.engines.values():
                if e.engine_id.startswith(prefix):
                    for k, v in changes.items():
                        setattr(e, k, v)

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        self._io.run(self.producer.send_and_wait(topic, value, key=key))  # type: ignore[attr-defined]

    # --- engines --------------------------------------------------------------------------

    async def _beat(self) -> None:
        while True:
            with self._lock:
                beating = [e for e in self.engines.values() if e.beating]
                statuses = [
                    EngineStatus(
                        engine_id=e.engine_id,
                        collection_id=e.collection_id,
                        plan_id="plan-a",
                        engine_index=int(e.engine_id.rsplit("e", 1)[1]),
                        state=e.state,
                        ts_ms=now_ms(),
                        run_id=e.run_id,
                        samples_published=e.published,
                    )
                    for e in beating
                ]
            for s in statuses:
                await self.producer.send(  # type: ignore[attr-defined]
                    self.topics[Topic.ENGINE_STATUS],
                    encode_message(s),
                    key=collection_key(s.collection_id),
                )
            await asyncio.sleep(0.3)

    async def _finish_later(self, run_id: str, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        with self._lock:
            for e in self.engines.values():
                if e.run_id == run_id and e.state is not EngineState.FINISHED:
                    e.state = EngineState.FINISHED

    # --- the stream's decisions -----------------------------------------------------------

    async def _read(self) -> None:
        t = self.topics
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            metadata_max_age_ms=1000,
        )
        await consumer.start()
        try:
            await kafka_io.wait_for_topics(
                self.bootstrap, [t[Topic.COMMANDS], t[Topic.RUN_EVENTS], t[Topic.RUN_STATUS]], 60
            )
            consumer.subscribe([t[Topic.COMMANDS], t[Topic.RUN_EVENTS], t[Topic.RUN_STATUS]])
            async for msg in consumer:
                assert msg.value is not None
                self._decided(msg.topic, msg.value)
        finally:
            await consumer.stop()

    def _decided(self, topic: str, value: bytes) -> None:
        t, d = self.topics, self.decisions
        with d.lock:
            if topic == t[Topic.RUN_STATUS]:
                status = decode_run_status(value)
                d.statuses[status.run_id] = status
                if status.ended_ms is not None:
                    d.ended_statuses.append(status)
            elif topic == t[Topic.RUN_EVENTS]:
                event = decode_run_event(value)
                if isinstance(event, RunEnded):
                    d.ended.append(event)
            else:
                command = decode_command(value)
                if isinstance(command, StopEngines):
                    d.stops.append(command)
                    delay = self.finish_delay_s[command.run_id]
                    self._pending.add(
                        asyncio.ensure_future(self._finish_later(command.run_id, delay))
                    )
                elif isinstance(command, PurgeEngines):
                    d.purges.append(command)
                    self.set_engines(f"{command.collection_id}-", beating=False)
