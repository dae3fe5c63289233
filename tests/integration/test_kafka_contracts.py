"""Every wire format through the real broker: bytes in = bytes out = golden file."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from shibuya.dev import kafka_io
from tests.golden import GOLDEN_DIR, MESSAGES, result_batch, same_batch
from wire import (
    Topic,
    collection_key,
    decode_batch,
    decode_command,
    decode_message,
    decode_run_event,
    parse_result_key,
    result_key,
    run_key,
    topic_name,
)

# Which topic each golden message travels on, and with which key.
ROUTES: dict[str, tuple[Topic, bytes]] = {
    "engine_status_v1.json": (Topic.ENGINE_STATUS, collection_key("c1")),
    "run_started_v1.json": (Topic.RUN_EVENTS, run_key("run-42")),
    "run_stop_requested_v1.json": (Topic.RUN_EVENTS, run_key("run-42")),
    "run_ended_v1.json": (Topic.RUN_EVENTS, run_key("run-42")),
    "command_start_v1.json": (Topic.COMMANDS, collection_key("c1")),
    "command_stop_v1.json": (Topic.COMMANDS, collection_key("c1")),
    "command_purge_v1.json": (Topic.COMMANDS, collection_key("c1")),
    "second_metrics_v1.json": (Topic.METRICS, run_key("run-42")),
    "metrics_rows_v1.json": (Topic.METRICS, run_key("run-42")),
}


async def _round_trip(bootstrap: str, prefix: str) -> dict[str, list[kafka_io.Record]]:
    topics = [topic_name(t, prefix) for t in Topic]
    await kafka_io.create_topics(bootstrap, topics, partitions=3)
    batch_bytes = (GOLDEN_DIR / "result_batch_v1.bin").read_bytes()
    async with kafka_io.producer(bootstrap) as p:
        await p.send_and_wait(
            topic_name(Topic.RESULTS, prefix), batch_bytes, key=result_key("run-42", "c1-plan-7-0")
        )
        for name, (topic, key) in ROUTES.items():
            await p.send_and_wait(
                topic_name(topic, prefix), (GOLDEN_DIR / name).read_bytes(), key=key
            )
    counts = {topic_name(Topic.RESULTS, prefix): 1}
    for topic, _ in ROUTES.values():
        counts[topic_name(topic, prefix)] = counts.get(topic_name(topic, prefix), 0) + 1
    received: dict[str, list[kafka_io.Record]] = {}

    async def drain(topic: str) -> None:
        received[topic] = []
        async with kafka_io.read_from_start(bootstrap, topic, group_id=f"{topic}-g") as records:
            async for r in records:
                received[topic].append(r)
                if len(received[topic]) == counts[topic]:
                    return

    async with asyncio.timeout(60):
        await asyncio.gather(*(drain(t) for t in counts))
    return received


def test_every_contract_round_trips_through_the_broker(kafka_bootstrap: str, unique: str) -> None:
    received = asyncio.run(_round_trip(kafka_bootstrap, unique))

    [batch_record] = received[topic_name(Topic.RESULTS, unique)]
    assert batch_record.value == (GOLDEN_DIR / "result_batch_v1.bin").read_bytes()
    assert batch_record.key is not None
    assert parse_result_key(batch_record.key) == ("run-42", "c1-plan-7-0")
    assert same_batch(decode_batch(batch_record.value), result_batch())

    by_bytes = {(GOLDEN_DIR / name).read_bytes(): name for name in ROUTES}
    seen = set()
    for topic in {t for t, _ in ROUTES.values()}:
        records = received[topic_name(topic, unique)]
        for record in records:
            assert record.value in by_bytes, f"unexpected bytes on {topic}"
            name = by_bytes[record.value]
            assert ROUTES[name] == (topic, record.key)
            message: msgspec.Struct = MESSAGES[name]
            assert decode_message(record.value, type(message)) == message
            if topic is Topic.COMMANDS:
                assert decode_command(record.value) == message
            if topic is Topic.RUN_EVENTS:
                assert decode_run_event(record.value) == message
            seen.add(name)
    assert seen == set(ROUTES)


def test_messages_of_one_key_keep_their_order(kafka_bootstrap: str, unique: str) -> None:
    """The run's events arrive in the order they were sent: they share the run's partition."""
    received = asyncio.run(_round_trip(kafka_bootstrap, unique))
    names = [
        {(GOLDEN_DIR / n).read_bytes(): n for n in ROUTES}[r.value or b""]
        for r in received[topic_name(Topic.RUN_EVENTS, unique)]
    ]
    assert names == ["run_started_v1.json", "run_stop_requested_v1.json", "run_ended_v1.json"]
    assert len({r.partition for r in received[topic_name(Topic.RUN_EVENTS, unique)]}) == 1


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_every_contract_has_a_route(name: str) -> None:
    assert name in MESSAGES
