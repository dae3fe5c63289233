"""What the control plane hears from the stream, and acts on.

Three followers, each a consumer group shared by the replicas, act on what the stream decides:
:func:`run_outcomes` reads ``run-status.v1`` (the operator view) and writes each run's end
(outcome, reason, verdicts) into its row once (:func:`control.services.runs.record_status`);
:func:`purge_executor` reads ``commands.v1`` and executes purges through the scheduler
(:func:`control.services.launches.execute_purge`); :func:`clickhouse_sink` stores the stream's
output in ClickHouse (:class:`control.results.sink.Sink`) where this process runs the sink.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from control.db.database import Sessions
from control.kafka import Follower, Handler, Incoming
from control.results.sink import Sink
from control.schedulers import Scheduler
from control.services import launches, runs
from control.settings import KafkaSettings
from wire import (
    Command,
    DecodeError,
    PurgeEngines,
    RunStatus,
    decode_command,
    decode_run_status,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


def decoded(
    decode: Callable[[bytes], T], apply: Callable[[T], None], kind: str,
    then: Callable[[T], None] | None = None,
) -> Handler:  # fmt: skip
    """A follower's handler: each record's value decoded (a malformed one is logged and skipped)
    and applied in a worker thread (database work, the scheduler), in order; ``then`` after it
    on the event loop."""

    async def handle(records: list[Incoming]) -> None:
        for r in records:
            try:
                message = decode(r.value or b"")
            except DecodeError as exc:
                log.warning("skipped a malformed %s at %s[%d]@%d: %s", kind, r.topic,
                            r.partition, r.offset, exc.reason)  # fmt: skip
                continue
            await asyncio.to_thread(apply, message)
            if then is not None:
                then(message)

    return handle


def run_outcomes(kafka: KafkaSettings, group_id: str, sessions: Sessions) -> Follower:
    """Record runs' ends from ``run-status.v1`` in the SQL store."""

    def apply(status: RunStatus) -> None:
        with sessions() as s, s.begin():
            runs.record_status(s, status)

    handle = decoded(decode_run_status, apply, "run status")
    return Follower(kafka, [kafka.topics.run_status], group_id, handle, name="run outcomes")


def purge_executor(
    kafka: KafkaSettings, group_id: str, sessions: Sessions, scheduler: Scheduler,
    purged: Callable[[int], None],
) -> Follower:  # fmt: skip
    """Execute the purge commands on ``commands.v1`` (the stream's GC, a user's purge) through
    the scheduler, then tell ``purged`` (the collection's id). Commands are keyed by collection,
    so each is executed by the replica that owns its partition; a purge removes only engines
    deployed before it was issued, so one delivered again (or late) removes nothing newer."""

    def ours(command: Command) -> PurgeEngines | None:
        """Start and stop are for the engines; ids other than a collection's are not ours."""
        if isinstance(command, PurgeEngines) and command.collection_id.isdigit():
            return command
        return None

    def apply(command: Command) -> None:
        if purge := ours(command):
            with sessions() as s:
                launches.execute_purge(s, scheduler, purge)

    def then(command: Command) -> None:
        if purge := ours(command):
            purged(int(purge.collection_id))

    handle = decoded(decode_command, apply, "command", then)
    return Follower(kafka, [kafka.topics.commands], group_id, handle, name="purge executor")


def clickhouse_sink(kafka: KafkaSettings, group_id: str, sink: Sink) -> Follower:
    """The sink fed by its consumer group: large batches, fetched soon."""
    follower = Follower(kafka, sink.topics, group_id, sink.store_messages,
                        name="ClickHouse sink", max_records=5000, poll_ms=200,
                        fetch_wait_ms=100)  # fmt: skip
    sink.stopping = lambda: follower.stopping
    return follower
