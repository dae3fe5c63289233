"""The Quix Streams case of bench/stream.py, run in its own virtualenv (Quix Streams pins a
pydantic older than the one the kubernetes client needs, so it cannot share ours).

    python bench/quix_peer.py <bootstrap> <topic> <total samples>

(bench/stream.py runs it through :func:`quix`.)

Prints ``<samples> <wall seconds> <cpu seconds>`` from the first message to the last.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from streams.aggregate import Aggregator
from wire import decode_batch


def main() -> None:
    from quixstreams import Application  # only in its own virtualenv

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
            agg.drain_columns()
            drained = now
        if seen >= total:  # both clocks read after the last drain: the same span of work
            print(seen, time.perf_counter() - t0, time.process_time() - c0, flush=True)
            app.stop()

    app.dataframe(source).update(aggregate)
    app.run()


QUIX_VERSION = "3.28.1"


def quix(
    bootstrap: str, topic: str, total: int, say: Callable[[str], object]
) -> tuple[int, float, float] | None:
    """Run :func:`main` with Quix Streams in its own virtualenv (cached by version), from our
    bench/stream.py: (samples, wall seconds, CPU seconds), or None where it cannot install."""
    from shibuya.dev.maven import cache_root  # not in that virtualenv

    venv = cache_root() / f"bench-quixstreams-{QUIX_VERSION}"
    python = venv / "bin" / "python"
    if not python.exists():
        say(f"installing Quix Streams {QUIX_VERSION} into {venv} …")
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", f"quixstreams=={QUIX_VERSION}",
                 "numpy", "msgspec"],
                check=True,
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            say(f"[yellow]Quix Streams not available: {exc}[/yellow]")
            return None
    repo = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [str(python), str(repo / "bench" / "quix_peer.py"), bootstrap, topic, str(total)],
        env={**os.environ, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    samples, wall, cpu = out.stdout.split()[-3:]
    return int(samples), float(wall), float(cpu)


if __name__ == "__main__":
    main()
