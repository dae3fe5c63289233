"""A state record at its limit commits on the state topic the worker creates, and is read back
whole; one byte more is refused at once, not retried for ever (the broker would refuse it each
time). Incompressible bytes: the worst case the topic must take."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest

from streams.errors import StateTooLargeError
from streams.kafka_admin import ensure_topics
from streams.ledger import Ledger, read_last
from streams.settings import WorkerSettings
from streams.topics import STATE_MAX_BYTES, owned_specs, state_topic

pytestmark = pytest.mark.integration


def test_a_state_record_at_the_limit_commits_and_one_over_it_is_refused(
    kafka_bootstrap: str,
) -> None:
    app_id = f"state-{uuid.uuid4().hex[:8]}"
    settings = WorkerSettings(app_id=app_id, kafka={"bootstrap": kafka_bootstrap, "partitions": 1,
                                                    "topic_prefix": app_id})  # fmt: skip

    async def trial() -> None:
        kafka = settings.kafka.access
        await ensure_topics(kafka, owned_specs(settings))
        ledger = Ledger(kafka, f"{app_id}-runs-0", state_topic(app_id, "runs"), 0)
        await ledger.open()
        try:
            at_limit = os.urandom(STATE_MAX_BYTES)
            await asyncio.wait_for(ledger.commit([], at_limit), 60)
            # The broker writes a transaction's commit markers after the commit has returned:
            # until then the record is not stable, and reads stop before it.
            deadline = time.monotonic() + 30
            while (last := await read_last(kafka, ledger.state_tp)) is None:
                assert time.monotonic() < deadline, "the committed record never became readable"
                await asyncio.sleep(0.1)
            assert last == at_limit
            with pytest.raises(StateTooLargeError, match="over the limit"):
                await ledger.commit([], at_limit + b"x")
        finally:
            await ledger.close()

    asyncio.run(trial())
