"""The ClickHouse sink in a background thread, for the demo and the tests.

The control API runs the sink on its own event loop; a script or a test that wants rows in
ClickHouse while it does blocking work runs it here instead. The store is shared (one embedded
engine per process), so queries from the caller's thread go through the same lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from control.results.clickhouse import Store
from control.results.sink import Sink
from control.services.followers import clickhouse_sink
from control.settings import KafkaSettings


@contextlib.contextmanager
def running_sink(
    store: Store,
    bootstrap: str,
    *,
    topic_prefix: str,
    group_id: str | None = None,
    sink: Sink | None = None,
) -> Iterator[Sink]:
    kafka = KafkaSettings(bootstrap=bootstrap, topic_prefix=topic_prefix)
    sink = sink or Sink(store, kafka.topics)
    follower = clickhouse_sink(kafka, group_id or f"{topic_prefix}-clickhouse-sink", sink)
    loop = asyncio.new_event_loop()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            loop.run_until_complete(follower.run())
        except BaseException as exc:  # reported to the caller on exit
            failure.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="clickhouse-sink", daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        if not loop.is_closed():
            loop.call_soon_threadsafe(follower.stop)
        thread.join(timeout=30)
        if failure:
            raise RuntimeError("the ClickHouse sink failed") from failure[0]
