"""The control plane's Kafka adapter (aiokafka) — the only module of control that imports it.

* :class:`Producer`: what the API tells the stream and the engines (run events, commands), with an
  idempotent ``acks=all`` producer started on first use; a send returns once Kafka has every
  record, or raises :class:`~control.errors.UnavailableError` — within ``send_timeout_s``, so a
  request made while Kafka is away answers 503 at once rather than hanging.
* :class:`Follower`: one loop that follows topics as a consumer group shared by the replicas,
  ``read_committed``; each batch of records is handed to a handler and its offsets committed only
  after the handler returned, so a replica that dies re-delivers to another what it had not
  finished. While Kafka is away (or a topic does not exist yet) it tries again every few seconds.
  The ClickHouse sink, the recorder of runs' ends and the purge executor are followers. Without
  a group, a follower reads every partition from the start and commits nothing: each replica
  hears everything (the live views' provisional rows, on a topic that keeps only minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from control.errors import UnavailableError
from control.settings import KafkaSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A record to send."""

    topic: str
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class Incoming:
    """A record read, with where it was."""

    topic: str
    partition: int
    offset: int
    value: bytes | None


class Producer:
    def __init__(self, kafka: KafkaSettings) -> None:
        self.bootstrap, self._timeout_s = kafka.bootstrap, kafka.send_timeout_s
        self._access = kafka.access
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    **self._access.aiokafka(), enable_idempotence=True, acks="all",
                    request_timeout_ms=10_000,
                )  # fmt: skip
                try:
                    await asyncio.wait_for(producer.start(), self._timeout_s)
                except (KafkaError, TimeoutError) as exc:
                    await producer.stop()
                    raise UnavailableError(
                        f"Kafka at {self.bootstrap} is unavailable: {exc!r}"
                    ) from exc
                self._producer = producer
            return self._producer

    async def send(self, records: Sequence[Outgoing]) -> None:
        """Send in order and wait until Kafka has all of them, for at most ``send_timeout_s``.
        Records not confirmed by then may still arrive later (the producer keeps them): every
        record the API sends is idempotent for its readers."""
        producer = await self._started()
        try:
            async with asyncio.timeout(self._timeout_s):
                for r in records:
                    await producer.send_and_wait(r.topic, r.value, key=r.key)
        except KafkaError as exc:
            raise UnavailableError(f"Kafka refused a message: {exc!r}") from exc
        except TimeoutError:
            raise UnavailableError(
                f"Kafka at {self.bootstrap} did not take the message within "
                f"{self._timeout_s:g} s; it may still arrive when Kafka is back"
            ) from None

    async def check(self) -> None:
        """Raise :class:`UnavailableError` unless Kafka answers a metadata request in time."""
        producer = await self._started()
        try:
            async with asyncio.timeout(self._timeout_s):
                await producer.client.force_metadata_update()
        except (KafkaError, TimeoutError) as exc:
            raise UnavailableError(f"Kafka at {self.bootstrap} did not answer: {exc!r}") from exc

    async def close(self) -> None:
        """Flush and close, for at most ``send_timeout_s``: the API does not hang on its way out
        while Kafka is away (what was not delivered by then was answered 503)."""
        if self._producer is not None:
            try:
                await asyncio.wait_for(self._producer.stop(), self._timeout_s)
            except TimeoutError:
                log.warning("Kafka at %s away: closed with records undelivered", self.bootstrap)


Handler = Callable[[list[Incoming]], Awaitable[None]]


class Follower:
    def __init__(
        self, kafka: KafkaSettings, topics: Sequence[str], group_id: str | None, handle: Handler, *,
        name: str, max_records: int = 500, poll_ms: int = 500, fetch_wait_ms: int = 500,
        retry_s: float = 5,
    ) -> None:  # fmt: skip
        self.name, self._kafka, self._topics, self._group_id = name, kafka, list(topics), group_id
        self._handle, self._max_records, self._retry_s = handle, max_records, retry_s
        self._poll_ms, self._fetch_wait_ms = poll_ms, fetch_wait_ms
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self) -> None:
        """Follow until :meth:`stop`."""
        same = None  # the last failure's kind: told once, not at every try
        while not self._stop.is_set():
            try:
                await self._follow()
            except Exception as exc:  # Kafka away, a topic not created yet
                if self._stop.is_set():
                    return
                level = logging.DEBUG if type(exc) is same else logging.WARNING
                log.log(level, "%s stopped (%r); again in %g s", self.name, exc, self._retry_s)
                same = type(exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self._retry_s)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            **self._kafka.access.aiokafka(), group_id=self._group_id,
            auto_offset_reset="earliest", enable_auto_commit=False,
            isolation_level="read_committed", max_poll_records=self._max_records,
            fetch_max_wait_ms=self._fetch_wait_ms,
            metadata_max_age_ms=5000,  # topics created after it started are found soon
        )  # fmt: skip
        await consumer.start()
        try:
            # Subscribed after start: a topic nobody created yet is waited for, not an error
            # (without a group, every partition is assigned once the topic appears).
            consumer.subscribe(self._topics)
            while not self._stop.is_set():
                batches = await consumer.getmany(timeout_ms=self._poll_ms)
                records = [
                    Incoming(r.topic, r.partition, r.offset, r.value)
                    for rs in batches.values()
                    for r in rs
                ]
                if not records:
                    continue
                await self._handle(records)
                if not self._group_id:
                    continue
                with contextlib.suppress(KafkaError):  # a rebalance: the handlers are idempotent
                    await consumer.commit()
        finally:
            try:  # leaving the group waits for a broker that may be away
                await asyncio.wait_for(consumer.stop(), self._retry_s)
            except TimeoutError:
                log.warning("%s: Kafka away, left without leaving the group", self.name)
