"""The worker's Kafka admin adapter (aiokafka): its topics, and whether it reaches Kafka.

The topics it owns exist before it subscribes: Faust creates the topics it declares while it
subscribes; on a fresh cluster its first assignment can then miss a topic that did not exist yet
("Ignoring missing topic"), and the worker idles until the next metadata refresh minutes later.
Creating them first closes that race. :class:`Reachability` tells the runs' owners whether the
silence they hear is Kafka's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Iterable
from typing import NamedTuple

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.protocol.metadata import MetadataRequest

from streams.errors import TopicSetupError
from wire import KafkaAccess

log = logging.getLogger(__name__)


class TopicSpec(NamedTuple):
    name: str
    partitions: int
    replication: int
    configs: dict[str, str] | None = None


async def ensure_topics(
    kafka: KafkaAccess, specs: Iterable[TopicSpec], timeout_s: float = 60
) -> dict[str, int]:
    """Create missing topics, wait until the broker lists all of them, and return how many
    partitions each one has — an existing topic keeps its own count, whatever was asked."""
    specs = list(specs)
    admin = AIOKafkaAdminClient(**kafka.aiokafka(), request_timeout_ms=10_000)
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            existing = set(await admin.list_topics())
            for spec in specs:
                if spec.name in existing:
                    continue
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(
                        [
                            NewTopic(
                                spec.name,
                                spec.partitions,
                                spec.replication,
                                topic_configs=spec.configs or {},
                            )
                        ]
                    )
                log.info("created topic %s with %d partitions", spec.name, spec.partitions)
            wanted = {s.name for s in specs}
            while not wanted <= set(await admin.list_topics()):
                await asyncio.sleep(0.1)
            described = await admin.describe_topics(sorted(wanted))
            return {d["topic"]: len(d["partitions"]) for d in described}
    except (TimeoutError, KafkaError) as exc:
        raise TopicSetupError(f"cannot set up topics on {kafka.bootstrap}: {exc!r}") from exc
    finally:
        await admin.close()


class Reachability:
    """Whether this worker reaches Kafka: one metadata request a second.

    A broker outage silences the engines' heartbeats and the worker alike; :attr:`last_ok_ms`
    lets the runs' owners tell that from engines that went quiet while Kafka was there to hear
    them (:meth:`streams.runs.RunsTable.tick`).
    """

    def __init__(self, kafka: KafkaAccess, timeout_s: float = 2.0) -> None:
        self._kafka = kafka
        self._timeout_s = timeout_s
        self._client: AIOKafkaClient | None = None
        self.last_ok_ms = int(time.time() * 1000)
        """When Kafka last answered (the start counts as an answer)."""

    async def check(self) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                if self._client is None:
                    timeout_ms = int(self._timeout_s * 1000)
                    client = AIOKafkaClient(**self._kafka.aiokafka(),
                                            request_timeout_ms=timeout_ms)  # fmt: skip
                    try:
                        await client.bootstrap()
                    except BaseException:
                        await client.close()
                        raise
                    self._client = client
                if not await self._answered(self._client):
                    return
        except (TimeoutError, KafkaError) as exc:
            log.debug("Kafka did not answer: %r", exc)
            return
        self.last_ok_ms = int(time.time() * 1000)

    @staticmethod
    async def _answered(client: AIOKafkaClient) -> bool:
        """Whether a broker answers a metadata request for no topic (brokers only: the whole
        cluster's metadata, every second, had cost the worker a quarter of its CPU to decode on a
        cluster of a few hundred topics)."""
        nodes = [b.nodeId for b in client.cluster.brokers()]
        random.shuffle(nodes)
        for node in nodes:
            try:
                await client.send(node, MetadataRequest([]))
            except KafkaError as exc:
                log.debug("broker %s did not answer: %r", node, exc)
                continue
            return True
        return False

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
