"""The Quix Streams case of bench/stream.py, run in its own virtualenv (Quix Streams pins a
pydantic older than the one the kubernetes client needs, so it cannot share ours).

    python bench/quix_peer.py <bootstrap> <topic> <total samples>

Prints ``<samples> <wall seconds> <cpu seconds>`` from the first message to the last.
"""

from __future__ import annotations

import sys
import time
import uuid

from quixstreams import Application

from streams.aggregate import Aggregator
from wire import decode_batch


def main() -> None:
    bootstrap, topic, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
    app = Application(
        broker_address=bootstrap,
        consumer_group=f"bench-quix-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        auto_create_topics=False,
    )
    source = app.topic(topic, value_deserializer="bytes", key_deserializer="bytes")
    agg = Aggregator()
    seen, t0, c0, drained = 0, 0.0, 0.0, 0.0

    def aggregate(value: bytes) -> None:
        nonlocal seen, t0, c0, drained
        if not seen:
            t0, c0 = time.perf_counter(), time.process_time()
            drained = t0
        b = decode_batch(value)
        agg.add(b)
        seen += len(b)
        now = time.perf_counter()
        if now - drained >= 1 or seen >= total:
            agg.drain()
            drained = now
        if seen >= total:  # both clocks read after the last drain: the same span of work
            print(seen, time.perf_counter() - t0, time.process_time() - c0, flush=True)
            app.stop()

    app.dataframe(source).update(aggregate)
    app.run()


if __name__ == "__main__":
    main()
