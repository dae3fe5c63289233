"""aiokafka against the chosen Kafka version: consume in a group, commit, resume."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from shibuya.dev import kafka_io


async def _consume(bootstrap: str, topic: str, group: str, n: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        got: list[bytes] = []
        async with asyncio.timeout(30):
            while len(got) < n:
                msg = await consumer.getone()
                got.append(msg.value or b"")
                if len(got) == n:
                    await consumer.commit({TopicPartition(topic, msg.partition): msg.offset + 1})
        return got
    finally:
        await consumer.stop()


def test_a_group_resumes_after_its_committed_offset(kafka_bootstrap: str, unique: str) -> None:
    async def scenario() -> tuple[list[bytes], list[bytes]]:
        await kafka_io.create_topics(kafka_bootstrap, [unique], partitions=1)
        async with kafka_io.producer(kafka_bootstrap) as p:
            for i in range(10):
                await p.send(unique, f"m{i}".encode())
        first = await _consume(kafka_bootstrap, unique, f"{unique}-g", 6)
        rest = await _consume(kafka_bootstrap, unique, f"{unique}-g", 4)
        return first, rest

    first, rest = asyncio.run(scenario())
    assert first == [f"m{i}".encode() for i in range(6)]
    assert rest == [f"m{i}".encode() for i in range(6, 10)]
