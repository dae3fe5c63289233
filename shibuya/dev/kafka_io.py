"""The dev tooling's Kafka client adapter (aiokafka), also used by the tests.

Small on purpose: create and wait for topics, produce reliably, read a topic from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from shibuya.dev.procs import ServiceError
from wire import KafkaAccess

# aiokafka logs every failed metadata refresh at ERROR while a topic is being created.
logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


Kafka = str | KafkaAccess
"""A broker's bootstrap servers (no authentication), or how to reach it as someone."""


def _client(kafka: Kafka) -> dict[str, object]:
    return (kafka if isinstance(kafka, KafkaAccess) else KafkaAccess(kafka)).aiokafka()


@contextlib.asynccontextmanager
async def admin(bootstrap: Kafka) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(**_client(bootstrap), request_timeout_ms=10_000)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def create_topics(bootstrap: Kafka, names: Iterable[str], partitions: int) -> None:
    """Create topics; existing ones are left as they are."""
    async with admin(bootstrap) as client:
        for name in names:
            with contextlib.suppress(TopicAlreadyExistsError):
                await client.create_topics([NewTopic(name, partitions, 1)])


async def wait_for_topics(bootstrap: Kafka, names: Iterable[str], timeout_s: float) -> None:
    wanted = set(names)
    async with asyncio.timeout(timeout_s), admin(bootstrap) as client:
        while not wanted <= set(await client.list_topics()):
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def producer(bootstrap: Kafka) -> AsyncIterator[AIOKafkaProducer]:
    """An idempotent producer that waits for all in-sync replicas, zstd-compressed."""
    p = AIOKafkaProducer(
        **_client(bootstrap),
        enable_idempotence=True,
        acks="all",
        compression_type="zstd",
        linger_ms=5,
    )
    try:
        await p.start()
    except KafkaError as exc:
        await p.stop()  # what it opened, closed
        raise ServiceError(f"cannot connect a producer to Kafka at {bootstrap}: {exc}") from exc
    try:
        yield p
    finally:
        await p.stop()


@contextlib.asynccontextmanager
async def read_from_start(
    bootstrap: Kafka, topic: str, *, group_id: str | None = None
) -> AsyncIterator[AsyncIterator[Record]]:
    """Every record of ``topic`` from the earliest offset on, then new ones as they come.

    A context manager, so the consumer is closed however the reading loop ends.
    """
    consumer = AIOKafkaConsumer(
        topic,
        **_client(bootstrap),
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",  # the stream writes in transactions
    )
    await consumer.start()
    try:
        yield _records(consumer)
    finally:
        await consumer.stop()


async def _records(consumer: AIOKafkaConsumer) -> AsyncIterator[Record]:
    msg: ConsumerRecord[bytes, bytes]
    async for msg in consumer:
        yield Record(msg.topic, msg.partition, msg.offset, msg.key, msg.value)
