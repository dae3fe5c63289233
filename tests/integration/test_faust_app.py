"""What streams/app.py sets inside Faust, held against the installed Faust and a real broker.

The worker reaches into places Faust 0.15 does not expose (streams/app.py says why). If an
upgrade of Faust or aiokafka moves one of them, these tests fail here, with the place named —
not a worker that quietly reads uncommitted partials, stalls on idle partitions, or loses the
agents' last flush on SIGTERM.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, cast

import faust
import pytest
from aiokafka.consumer.fetcher import READ_COMMITTED
from aiokafka.structs import TopicPartition
from faust.transport.consumer import TransactionManager
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.app import FETCH_MAX_WAIT_MS, FETCH_MIN_BYTES, ISOLATION_LEVEL, App


def test_the_worker_consumer_fetches_committed_records_without_faust_s_long_wait(
    kafka_bootstrap: str, unique: str
) -> None:
    async def check() -> None:
        app = App(unique, broker=f"kafka://{kafka_bootstrap}", store="memory://")
        thread = _thread_of(app)
        assert isinstance(thread, faust_aiokafka.AIOKafkaConsumerThread)
        consumer = thread._create_worker_consumer(cast(faust_aiokafka.Transport, app.transport))
        await consumer.start()  # the settings take effect when aiokafka builds its fetcher
        try:
            fetcher = consumer._fetcher
            assert fetcher._fetch_max_wait_ms == FETCH_MAX_WAIT_MS == 100
            assert fetcher._fetch_min_bytes == FETCH_MIN_BYTES == 256 * 1024
            assert ISOLATION_LEVEL == "read_committed"
            assert fetcher._isolation_level == READ_COMMITTED
            consumer.assign([TopicPartition(f"{unique}.absent", 0)])  # the fetcher is alive
        finally:
            await consumer.stop()
            thread.thread_loop.close()  # Faust made it for the consumer's own thread

    asyncio.run(check())


def _thread_of(app: faust.App) -> Any:
    """The consumer's thread (Faust's typed interface does not name it)."""
    return cast(Any, app.consumer)._thread


def test_drain_hooks_run_after_the_fetcher_stops_and_before_the_last_commit() -> None:
    # Faust stops its consumer in this order; our drain hooks ride on the wait in the middle.
    source = inspect.getsource(faust.App._stop_consumer)
    order = [source.index(step) for step in (
        "await self._stop_fetcher()", "await self._consumer_wait_empty(", "self.tables.stop()"
    )]  # fmt: skip
    assert order == sorted(order), source
    assert "stream_wait_empty" in inspect.getsource(faust.App._consumer_wait_empty)


def test_our_transport_and_consumer_are_the_ones_faust_builds(kafka_bootstrap: str) -> None:
    async def check() -> None:
        app = App("pins", broker=f"kafka://{kafka_bootstrap}", store="memory://")
        assert type(app.transport).__name__ == "_Transport"
        assert type(app.consumer).__name__ == "_Consumer"
        assert type(_thread_of(app)).__name__ == "_ConsumerThread"
        _thread_of(app).thread_loop.close()
        assert app.conf.stream_wait_empty is False  # else a SIGTERM waits for held events forever

    asyncio.run(check())


# --- why the stream keeps its state in records of its own (docs/stream.md §9) ---------------


def test_a_faust_table_cannot_be_written_by_the_clock(kafka_bootstrap: str) -> None:
    """A table write takes its changelog partition from the event being processed. The runs
    and deployments agents act on the clock — a run's time is up, an engine went silent, a
    collection idled — with no event at hand, and what they decide must commit with the state
    that says it was decided."""

    async def check() -> None:
        app = faust.App("pins-eos", broker=f"kafka://{kafka_bootstrap}", store="memory://",
                        processing_guarantee="exactly_once")  # fmt: skip
        runs = app.Table("runs", default=int)
        try:
            with pytest.raises(TypeError, match="outside of stream iteration"):
                runs["run-1"] = 1
        finally:
            _thread_of(app).thread_loop.close()

    asyncio.run(check())


def test_faust_exactly_once_puts_each_record_in_the_transaction_of_its_output_partition() -> None:
    """Faust's ``exactly_once`` opens one transaction per output partition and picks it by the
    partition a record is sent to — not by the input partition whose offsets it commits. A flush
    of one results partition sends partials for many runs (many partitions): it would span
    several transactions, none holding the input offset with all the output. If this changes,
    read docs/stream.md §9 again."""
    source = inspect.getsource(TransactionManager.send)
    assert "p = self.consumer.key_partition(topic, key, partition)" in source, source
    assert 'transactional_id = f"{self.app.conf.id}-{group}-{p}"' in source, source
