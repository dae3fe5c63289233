"""What the control plane tells the stream and the engines over Kafka, and what it hears back.

:class:`Publisher` sends run events (``run-events.v1``, keyed by run) and engine commands
(``commands.v1``, keyed by collection) with an idempotent producer; every command has an id, so
a retried send has no second effect. :class:`RunOutcomes` follows ``run-status.v1`` — the
stream's operator view — as a consumer group shared by the replicas, and writes each run's end
(outcome, reason, verdicts) into the SQL store once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from control.db.models import Run
from streams.wire import (
    DecodeError,
    Topic,
    collection_key,
    decode_run_status,
    encode_message,
    run_key,
    topic_name,
)

log = logging.getLogger(__name__)


class UnavailableError(RuntimeError):
    """Kafka could not take the message."""


class Publisher:
    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.bootstrap = bootstrap
        self.run_events = topic_name(Topic.RUN_EVENTS, prefix)
        self.commands = topic_name(Topic.COMMANDS, prefix)
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap, enable_idempotence=True, acks="all",
                    request_timeout_ms=10_000,
                )  # fmt: skip
                try:
                    await asyncio.wait_for(producer.start(), 15)
                except (KafkaError, TimeoutError) as exc:
                    await producer.stop()
                    raise UnavailableError(
                        f"Kafka at {self.bootstrap} is unavailable: {exc!r}"
                    ) from exc
                self._producer = producer
            return self._producer

    async def send(self, messages: list[tuple[str, bytes, msgspec.Struct]]) -> None:
        """Send (topic, key, message) in order and wait until Kafka has all of them."""
        producer = await self._started()
        try:
            for topic, key, message in messages:
                await producer.send_and_wait(topic, encode_message(message), key=key)
        except KafkaError as exc:
            raise UnavailableError(f"Kafka refused a message: {exc!r}") from exc

    def run_event(self, run_id: str, message: msgspec.Struct) -> tuple[str, bytes, msgspec.Struct]:
        return self.run_events, run_key(run_id), message

    def command(
        self, collection_id: str, message: msgspec.Struct
    ) -> tuple[str, bytes, msgspec.Struct]:
        return self.commands, collection_key(collection_id), message

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()


class RunOutcomes:
    """Record runs' ends from ``run-status.v1`` in the SQL store."""

    def __init__(
        self, bootstrap: str, prefix: str, group_id: str, sessions: sessionmaker[Session]
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic_name(Topic.RUN_STATUS, prefix)
        self.group_id = group_id
        self.sessions = sessions
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self._consume()
            except Exception as exc:  # Kafka away, topic not created yet
                log.warning("run outcomes: %r; retrying in 5 s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), 5)

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group_id,
            auto_offset_reset="earliest", enable_auto_commit=False,
            isolation_level="read_committed", metadata_max_age_ms=5000,
        )  # fmt: skip
        await consumer.start()
        try:
            consumer.subscribe([self.topic])
            while not self._stop.is_set():
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for r in records:
                        await asyncio.to_thread(self._apply, r.value or b"")
                if batches:
                    await consumer.commit()
        finally:
            await consumer.stop()

    def _apply(self, value: bytes) -> None:
        try:
            status = decode_run_status(value)
        except DecodeError as exc:
            log.warning("run outcomes: skipped a malformed run status: %s", exc.reason)
            return
        with self.sessions() as s, s.begin():
            values: dict[str, object] = {"state": status.state, "reason": status.reason}
            row = update(Run).where(Run.id == status.run_id, Run.ended_at.is_(None))
            if status.ended_ms is None:
                # Progress arrives every flush; the row takes only changes of state (the live
                # details are in ClickHouse).
                row = row.where(Run.state != status.state)
            else:
                values |= {
                    "ended_at": datetime.fromtimestamp(status.ended_ms / 1000, UTC),
                    "outcome": status.state,
                    "verdicts": {c.criterion: c.passed for c in status.criteria},
                    "final_status": msgspec.to_builtins(status),
                }
            # Once ended, a run's row no longer changes (a replayed status is a no-op).
            s.execute(row.values(**values))
