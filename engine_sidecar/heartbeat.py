"""Heartbeats: the engine's state, threads, CPU and memory, every few seconds, over Kafka.

This replaces a central poller of engine metrics: each sidecar reports its own engine. A
heartbeat that cannot be sent is logged and skipped; it never holds up the results.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from engine_sidecar.errors import PublishError
from engine_sidecar.procstats import CpuMeter
from engine_sidecar.publisher import BatchSender
from wire import EngineState, EngineStatus, collection_key, encode_message

log = logging.getLogger(__name__)


class EngineRef(NamedTuple):
    collection_id: str
    plan_id: str
    engine_index: int
    engine_id: str


@dataclass(frozen=True)
class Snapshot:
    """What the sidecar knows of its engine right now."""

    state: EngineState
    run_id: str | None = None
    command_id: str | None = None
    threads: int = 0
    samples_published: int = 0
    malformed_lines: int = 0
    exit_code: int | None = None
    detail: str = ""
    unpublished_bytes: int = 0


class Heartbeat:
    def __init__(
        self,
        *,
        sender: BatchSender,
        topic: str,
        engine: EngineRef,
        snapshot: Callable[[], Snapshot],
        meter: CpuMeter | None,
        interval_s: float,
    ) -> None:
        self._sender = sender
        self._topic = topic
        self._engine = engine
        self._snapshot = snapshot
        self._meter = meter
        self._interval_s = interval_s
        self.sent = 0

    def status(self, *, exiting: bool = False) -> EngineStatus:
        s = self._snapshot()
        cores, memory = self._meter.sample() if self._meter else (None, None)
        e = self._engine
        return EngineStatus(
            engine_id=e.engine_id,
            collection_id=e.collection_id,
            plan_id=e.plan_id,
            engine_index=e.engine_index,
            state=s.state,
            ts_ms=int(time.time() * 1000),
            run_id=s.run_id,
            command_id=s.command_id,
            threads=s.threads,
            cpu_cores=cores,
            memory_bytes=memory,
            samples_published=s.samples_published,
            malformed_lines=s.malformed_lines,
            exit_code=s.exit_code,
            detail=s.detail,
            unpublished_bytes=s.unpublished_bytes,
            exiting=exiting,
        )

    async def send_now(self, *, exiting: bool = False) -> None:
        """Send a heartbeat now; ``exiting`` marks the last one, sent as the sidecar goes away."""
        try:
            async with asyncio.timeout(self._interval_s):
                await self._sender.send(
                    self._topic,
                    collection_key(self._engine.collection_id),
                    encode_message(self.status(exiting=exiting)),
                )
            self.sent += 1
        except (PublishError, TimeoutError) as exc:
            log.warning("heartbeat not sent: %s", exc or "timed out")

    async def run(self, stop: asyncio.Event) -> None:
        """Send a heartbeat now and every ``interval_s`` until ``stop`` is set."""
        while not stop.is_set():
            await self.send_now()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval_s)
