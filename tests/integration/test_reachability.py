"""The worker's once-a-second check that it reaches Kafka (streams/kafka_admin.py): a real
broker answers it, an address with no broker does not, and the check asks for no topic's
metadata — the whole cluster's, every second, had cost a quarter of the worker's CPU."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka.conn import AIOKafkaConnection
from aiokafka.protocol.metadata import MetadataRequest

from shibuya.dev import kafka_io
from shibuya.dev.procs import free_port
from streams.kafka_admin import Reachability
from wire import KafkaAccess

pytestmark = pytest.mark.integration


def test_a_broker_answers_without_sending_its_topics(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[list[str] | None] = []  # the topics of each metadata request sent
    send = AIOKafkaConnection.send

    def spied(self: AIOKafkaConnection, request: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(request, MetadataRequest):
            asked.append(request._topics)
        return send(self, request, *args, **kwargs)

    monkeypatch.setattr(AIOKafkaConnection, "send", spied)

    async def main() -> None:
        await kafka_io.create_topics(kafka_bootstrap, [f"reach-{uuid.uuid4().hex[:8]}"],
                                     partitions=1)  # fmt: skip
        reach = Reachability(KafkaAccess(kafka_bootstrap))
        try:
            for _ in range(3):
                before = reach.last_ok_ms = 0
                await reach.check()
                assert reach.last_ok_ms > before
            assert len(asked) >= 3  # the bootstrap's and one a check
            assert all(topics == [] for topics in asked), asked
        finally:
            await reach.close()

    asyncio.run(main())


def test_no_broker_no_answer() -> None:
    async def main() -> None:
        reach = Reachability(KafkaAccess(f"127.0.0.1:{free_port()}"), timeout_s=0.5)
        try:
            reach.last_ok_ms = 0
            await reach.check()
            assert reach.last_ok_ms == 0
        finally:
            await reach.close()

    asyncio.run(main())
