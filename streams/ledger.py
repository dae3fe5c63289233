"""Exactly-once output of a partition's owner: Kafka transactions plus a state record.

Both agents keep work in memory and flush it about once a second. A :class:`Ledger` belongs to one
input partition. Each flush is one Kafka transaction holding the flush's output records *and* the
owner's state record (the input offset the output covers, plus what the agent needs to resume:
the engines' batch sequences, the runs' window cursors) in a compacted state topic, in the
partition with the input partition's number. Readers consume ``read_committed``, so output and
state become visible together or not at all — a worker killed mid-flush leaves nothing behind.

The transactional id is fixed per input partition, so whoever owns the partition next fences the
previous owner (its commits fail with ``ProducerFenced``) before reading the state record; it then
skips input at or below the recorded offset and redoes the rest. Input offsets committed to the
consumer group only save re-reading; the state record is the truth.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from streams.errors import FencedError, StateTooLargeError
from streams.topics import STATE_MAX_BYTES
from wire import KafkaAccess

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None


class Ledger:
    def __init__(
        self,
        kafka: KafkaAccess,
        transactional_id: str,
        state_topic: str,
        partition: int,
        *,
        retry_s: float = 0.5,
        compression: str = "zstd",
    ) -> None:
        self.state_tp = TopicPartition(state_topic, partition)
        self._kafka = kafka
        self._transactional_id = transactional_id
        self._compression = None if compression == "none" else compression
        self._producer = self._new_producer()
        self._retry_s = retry_s
        self._lock = asyncio.Lock()
        self.fenced = False

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **self._kafka.aiokafka(),
            transactional_id=self._transactional_id,
            transaction_timeout_ms=15_000,
            # zstd at Kafka's default level 3: ~330 MB/s on partials here, where aiokafka's lz4
            # (level 9) managed 57 MB/s and was a fifth of a busy worker's CPU.
            compression_type=self._compression,
            linger_ms=5,
            max_request_size=16 * 1024 * 1024,
        )

    async def open(self) -> bytes | None:
        """Fence the previous owner, then return the last committed state record (or None)."""
        await self._producer.start()  # InitProducerId: aborts the previous owner's open transaction
        return await read_last(self._kafka, self.state_tp)

    async def close(self) -> None:
        try:
            await self._producer.stop()
        except KafkaError as exc:  # a fenced producer may fail to stop cleanly
            log.debug("closing %s: %r", self.state_tp, exc)

    async def commit(self, records: Sequence[Record], state: bytes) -> None:
        """Send ``records`` and the state record in one transaction; retry until it commits.

        Raises :class:`FencedError` when another worker has taken the partition, and
        :class:`StateTooLargeError` at once for a state record over ``STATE_MAX_BYTES`` (the
        state topic would refuse it for ever).
        """
        if len(state) > STATE_MAX_BYTES:
            raise StateTooLargeError(
                f"the state record of {self.state_tp} is {len(state):,} bytes, over the limit of "
                f"{STATE_MAX_BYTES:,}"
            )
        async with self._lock:
            while True:
                if self.fenced:
                    raise FencedError(str(self.state_tp))
                try:
                    await self._transaction(records, state)
                    return
                except ProducerFenced as exc:
                    self.fenced = True
                    raise FencedError(str(self.state_tp)) from exc
                except (KafkaError, AssertionError) as exc:
                    # After a failed send aiokafka's transaction state can be beyond repair
                    # (OutOfOrderSequenceNumber, or an AssertionError on the next abort): start
                    # over with a new producer of the same transactional id, which aborts
                    # whatever the old one left open. The same records are sent again.
                    log.warning("flush of %s failed, retrying: %r", self.state_tp, exc)
                    await self._renew()
                    await asyncio.sleep(self._retry_s)
                    if await self._committed(state):
                        # The commit went through and only its answer was lost: sending the
                        # records again would apply them twice.
                        return

    async def _transaction(self, records: Sequence[Record], state: bytes) -> None:
        p = self._producer
        await p.begin_transaction()
        futures = [
            await p.send(r.topic, r.value, key=r.key, partition=r.partition) for r in records
        ]
        futures.append(
            await p.send(
                self.state_tp.topic,
                state,
                key=str(self.state_tp.partition).encode(),
                partition=self.state_tp.partition,
            )
        )
        await asyncio.gather(*futures)
        await p.commit_transaction()

    async def _committed(self, state: bytes) -> bool:
        try:
            return await read_last(self._kafka, self.state_tp) == state
        except KafkaError:
            return False

    async def _renew(self) -> None:
        await self.close()
        self._producer = self._new_producer()
        try:
            await self._producer.start()
        except ProducerFenced:
            self.fenced = True
        except KafkaError as exc:  # the broker may be down: the next attempt starts it again
            log.debug("restarting the producer of %s: %r", self.state_tp, exc)


async def read_last(kafka: KafkaAccess, tp: TopicPartition) -> bytes | None:
    """The value of the last committed record of ``tp``, read backwards in growing windows."""
    consumer = AIOKafkaConsumer(
        **kafka.aiokafka(),
        isolation_level="read_committed",
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        begin = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]  # the last stable offset
        window = 8
        while end > begin:
            start = max(begin, end - window)
            consumer.seek(tp, start)
            last: bytes | None = None
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for message in batch.get(tp, []):
                    if message.offset < end and message.value is not None:
                        last = message.value
            if last is not None or start == begin:
                return last
            window *= 4
        return None
    finally:
        await consumer.stop()
