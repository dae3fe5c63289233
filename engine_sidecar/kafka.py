"""The sidecar's Kafka adapter (aiokafka) — the only module of the sidecar that imports it.

Errors::

    PublishError      a record was not acknowledged (broker down, timeout); retriable: send the
                      same record again, the consumer drops repeats by (engine, sequence)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    retriable = True


class Producer:
    """Idempotent, ``acks=all``: a record acknowledged is on every in-sync replica."""

    def __init__(self, bootstrap: str, compression: str, timeout_s: float = 30) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            enable_idempotence=True,
            acks="all",
            compression_type=None if compression == "none" else compression,
            linger_ms=5,
            max_request_size=16 * 2**20,
            request_timeout_ms=int(timeout_s * 1000),
        )
        self._timeout_s = timeout_s
        self._started = False

    async def start(self) -> None:
        try:
            await self._producer.start()
        except KafkaError as exc:
            await self._producer.stop()
            raise PublishError(f"cannot reach Kafka: {exc!r}") from exc
        self._started = True

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Return once the broker acknowledged the record; raise :class:`PublishError` if not."""
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._producer.send_and_wait(topic, value, key=key)
        except (KafkaError, TimeoutError) as exc:
            raise PublishError(f"not acknowledged: {exc!r}") from exc

    async def close(self) -> None:
        if self._started:
            self._started = False
            await self._producer.stop()


@contextlib.asynccontextmanager
async def producer(bootstrap: str, compression: str) -> AsyncIterator[Producer]:
    """A started producer; retries until Kafka answers (the sidecar may start before it)."""
    p = Producer(bootstrap, compression)
    delay = 0.5
    while True:
        try:
            await p.start()
            break
        except PublishError as exc:
            log.warning("%s; retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            p = Producer(bootstrap, compression)
    try:
        yield p
    finally:
        await p.close()
