"""The sidecar's Kafka adapter (aiokafka) — the only module of the sidecar that imports it.

After a failed send the underlying aiokafka producer is closed and the next send starts a new
one: aiokafka's producer spins on metadata refreshes while its broker is away (thousands of
attempts a second, aio-libs/aiokafka#267), so we back off instead of keeping it alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from engine_sidecar.errors import PublishError
from wire import Command, DecodeError, KafkaAccess, decode_command

log = logging.getLogger(__name__)


class Producer:
    """Idempotent, ``acks=all``: a record acknowledged is on every in-sync replica."""

    def __init__(self, access: KafkaAccess, compression: str, timeout_s: float = 10) -> None:
        self._access = access
        self._bootstrap = access.bootstrap
        self._compression = None if compression == "none" else compression
        self._timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._lock:
            if self._producer is not None:
                return
            producer = AIOKafkaProducer(
                **self._access.aiokafka(),
                enable_idempotence=True,
                acks="all",
                compression_type=self._compression,
                linger_ms=5,
                max_batch_size=2**20,  # a group of result batches travels as one record batch
                max_request_size=16 * 2**20,
                request_timeout_ms=int(self._timeout_s * 1000),
                retry_backoff_ms=500,
            )
            try:
                async with asyncio.timeout(self._timeout_s):
                    await producer.start()
            except (KafkaError, TimeoutError) as exc:
                await producer.stop()
                raise PublishError(f"cannot reach Kafka at {self._bootstrap}: {exc!r}") from exc
            self._producer = producer

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Return once the broker acknowledged the record; raise :class:`PublishError` if not."""
        await self.send_all(topic, key, [value])

    async def send_all(self, topic: str, key: bytes, values: Sequence[bytes]) -> None:
        """Send the records in order (one key: one partition, which keeps the order) and return
        once the broker acknowledged them all; raise :class:`PublishError` if not."""
        await self.start()
        producer = self._producer
        assert producer is not None
        try:
            async with asyncio.timeout(self._timeout_s):
                acks = [await producer.send(topic, value, key=key) for value in values]
                await asyncio.gather(*acks)
        except (KafkaError, TimeoutError) as exc:
            await self._discard(producer)
            raise PublishError(f"not acknowledged: {exc!r}") from exc

    async def _discard(self, producer: AIOKafkaProducer) -> None:
        async with self._lock:
            if self._producer is producer:
                self._producer = None
        with contextlib.suppress(KafkaError, TimeoutError):
            async with asyncio.timeout(self._timeout_s):
                await producer.stop()

    async def close(self) -> None:
        if self._producer is not None:
            await self._discard(self._producer)


@contextlib.asynccontextmanager
async def producer(access: KafkaAccess, compression: str) -> AsyncIterator[Producer]:
    """A producer, connected when Kafka answers (the first sends retry until it does)."""
    p = Producer(access, compression)
    with contextlib.suppress(PublishError):
        await p.start()
    try:
        yield p
    finally:
        await p.close()


class CommandConsumer:
    """Reads the commands topic in the engine's own consumer group and commits as it goes.

    Every sidecar sees every command of its collection (each has its own group); what it acts
    on is decided by the agent. Bytes that are not a command come out as ``DecodeError``.
    """

    def __init__(self, access: KafkaAccess, topic: str, group_id: str) -> None:
        self._consumer = AIOKafkaConsumer(
            topic,
            **access.aiokafka(),
            group_id=group_id,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
        )

    async def __aenter__(self) -> CommandConsumer:
        delay = 0.5
        while True:
            try:
                await self._consumer.start()
                return self
            except KafkaError as exc:
                log.warning(
                    "cannot join the commands topic yet (%r); retrying in %.1fs", exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def commands(
        self,
    ) -> AsyncIterator[tuple[Command | DecodeError, Callable[[], Awaitable[None]]]]:
        """Each command with a callback that commits it as handled."""
        async for msg in self._consumer:
            try:
                item: Command | DecodeError = decode_command(msg.value or b"")
            except DecodeError as exc:
                item = exc
            tp = TopicPartition(msg.topic, msg.partition)

            async def commit(tp: TopicPartition = tp, offset: int = msg.offset + 1) -> None:
                with contextlib.suppress(KafkaError):
                    await self._consumer.commit({tp: offset})

            yield item, commit
