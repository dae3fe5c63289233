"""What the control plane tells the stream and the engines over Kafka, and what it hears back.

:class:`Publisher` sends run events (``run-events.v1``, keyed by run) and engine commands
(``commands.v1``, keyed by collection) with an idempotent producer; every command has an id, so
a retried send has no second effect. Two consumer groups shared by the replicas follow what the
stream decides: :class:`RunOutcomes` reads ``run-status.v1`` (the operator view) and writes each
run's end (outcome, reason, verdicts) into the SQL store once; :class:`PurgeExecutor` reads
``commands.v1`` and executes purges through the scheduler.
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

from control import launches
from control.db.models import Run
from control.schedulers import Scheduler, SchedulerError
from wire import (
    DecodeError,
    PurgeEngines,
    Topic,
    collection_key,
    decode_command,
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


class _Follower:
    """Follow one topic as a consumer group shared by the replicas: each record is applied (in a
    thread) before its offset is committed, so a replica that dies re-delivers to another what
    it had not finished."""

    topic: str

    def __init__(self, bootstrap: str, group_id: str) -> None:
        self.bootstrap = bootstrap
        self.group_id = group_id
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self._consume()
            except Exception as exc:  # Kafka away, topic not created yet
                log.warning("%s: %r; retrying in 5 s", type(self).__name__, exc)
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
                        await asyncio.to_thread(self.apply, r.value or b"")
                if batches:
                    await consumer.commit()
        finally:
            await consumer.stop()

    def apply(self, value: bytes) -> None:
        raise NotImplementedError


class RunOutcomes(_Follower):
    """Record runs' ends from ``run-status.v1`` in the SQL store."""

    def __init__(
        self, bootstrap: str, prefix: str, group_id: str, sessions: sessionmaker[Session]
    ) -> None:
        super().__init__(bootstrap, group_id)
        self.topic = topic_name(Topic.RUN_STATUS, prefix)
        self.sessions = sessions

    def apply(self, value: bytes) -> None:
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


class PurgeExecutor(_Follower):
    """Execute the purge commands on ``commands.v1`` (the stream's GC, a user's purge) through
    the scheduler. Commands are keyed by collection, so each is executed by the replica that
    owns its partition; a purge removes only engines deployed before it was issued, so one
    delivered again (or late) removes nothing newer."""

    def __init__(
        self,
        bootstrap: str,
        prefix: str,
        group_id: str,
        sessions: sessionmaker[Session],
        scheduler: Scheduler,
    ) -> None:
        super().__init__(bootstrap, group_id)
        self.topic = topic_name(Topic.COMMANDS, prefix)
        self.sessions = sessions
        self.scheduler = scheduler

    def apply(self, value: bytes) -> None:
        try:
            command = decode_command(value)
        except DecodeError as exc:
            log.warning("purges: skipped a malformed command: %s", exc.reason)
            return
        if not isinstance(command, PurgeEngines) or not command.collection_id.isdigit():
            return  # start and stop are for the engines; other ids are not ours
        issued = datetime.fromtimestamp(command.issued_ms / 1000, UTC)
        with self.sessions() as s:
            try:
                removed, launch = launches.purge(s, self.scheduler, int(command.collection_id),
                                                 issued, command.reason)  # fmt: skip
            except SchedulerError as exc:
                # Not retried here: engines left running keep heartbeating, so the stream's GC
                # sees the collection deployed again and purges it after another idle period.
                log.error("purge %s failed: %s", command.command_id, exc)
                return
        if removed or launch is not None:
            log.info("purge %s: %d engines removed (%s)", command.command_id, removed,
                     command.reason)  # fmt: skip
