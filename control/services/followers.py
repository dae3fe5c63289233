"""What the control plane hears from the stream, and acts on.

Three followers, each a consumer group shared by the replicas, act on what the stream decides:
:class:`RunOutcomes` reads ``run-status.v1`` (the operator view) and writes each run's end
(outcome, reason, verdicts) into its row once (:func:`control.services.runs.record_status`);
:class:`PurgeExecutor` reads ``commands.v1`` and executes purges through the scheduler
(:func:`control.services.launches.execute_purge`); :func:`clickhouse_sink` stores the stream's
output in ClickHouse (:class:`control.results.sink.Sink`) where this process runs the sink.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from control.db.database import Sessions
from control.kafka import Follower, Handler, Incoming
from control.results.sink import Sink
from control.schedulers import Scheduler
from control.services import launches, runs
from control.settings import KafkaSettings
from wire import DecodeError, PurgeEngines, decode_command, decode_run_status

log = logging.getLogger(__name__)


def each_in_a_thread(apply: Callable[[bytes], None]) -> Handler:
    """A follower's handler applying each record's value in a worker thread (database work),
    in order."""

    async def handle(records: list[Incoming]) -> None:
        for r in records:
            await asyncio.to_thread(apply, r.value or b"")

    return handle


class RunOutcomes:
    """Record runs' ends from ``run-status.v1`` in the SQL store."""

    def __init__(self, kafka: KafkaSettings, group_id: str, sessions: Sessions) -> None:
        self.sessions = sessions
        self.follower = Follower(kafka, [kafka.topics.run_status], group_id,
                                 each_in_a_thread(self.apply), name="run outcomes")  # fmt: skip

    def apply(self, value: bytes) -> None:
        try:
            status = decode_run_status(value)
        except DecodeError as exc:
            log.warning("run outcomes: skipped a malformed run status: %s", exc.reason)
            return
        with self.sessions() as s, s.begin():
            runs.record_status(s, status)


class PurgeExecutor:
    """Execute the purge commands on ``commands.v1`` (the stream's GC, a user's purge) through
    the scheduler. Commands are keyed by collection, so each is executed by the replica that
    owns its partition; a purge removes only engines deployed before it was issued, so one
    delivered again (or late) removes nothing newer."""

    def __init__(
        self, kafka: KafkaSettings, group_id: str, sessions: Sessions, scheduler: Scheduler
    ) -> None:
        self.sessions = sessions
        self.scheduler = scheduler
        self.follower = Follower(kafka, [kafka.topics.commands], group_id,
                                 each_in_a_thread(self.apply), name="purge executor")  # fmt: skip

    def apply(self, value: bytes) -> None:
        try:
            command = decode_command(value)
        except DecodeError as exc:
            log.warning("purges: skipped a malformed command: %s", exc.reason)
            return
        if isinstance(command, PurgeEngines) and command.collection_id.isdigit():
            with self.sessions() as s:  # start and stop are for the engines; other ids not ours
                launches.execute_purge(s, self.scheduler, command)


def clickhouse_sink(kafka: KafkaSettings, group_id: str, sink: Sink) -> Follower:
    """The sink fed by its consumer group: large batches, fetched soon."""
    follower = Follower(kafka, sink.topics, group_id, sink.store_messages,
                        name="ClickHouse sink", max_records=5000, poll_ms=200,
                        fetch_wait_ms=100)  # fmt: skip
    sink.stopping = lambda: follower.stopping
    return follower
