"""Reading a topic whole, as a test checks what was written."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from shibuya.dev.kafka_io import Record, admin


async def read_all(bootstrap: str, topic: str, timeout_s: float = 30) -> list[Record]:
    """Every committed record of ``topic`` up to its end now, from every partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed")  # fmt: skip
    await consumer.start()
    try:
        async with admin(bootstrap) as client:
            (described,) = await client.describe_topics([topic])
        partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out: list[Record] = []
        async with asyncio.timeout(timeout_s):
            # Transaction markers take offsets too: done when each position reaches its end.
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    out += [Record(m.topic, m.partition, m.offset, m.key, m.value)
                            for m in records]  # fmt: skip
        return out
    finally:
        await consumer.stop()
