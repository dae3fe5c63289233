"""The load of bench/stream.py: result batches as engines' sidecars send them, a backlog of them,
and live traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from dataclasses import replace

import numpy as np
from aiokafka import AIOKafkaProducer

from shibuya.dev import kafka_io
from wire import BatchBuilder, encode_batch, result_key
from wire.ticks import SEND_PHASE, until_tick


def batch(
    run: str,
    engine: str,
    seq: int,
    n: int,
    labels: int,
    t0_ms: int,
    rng: np.random.Generator,
    spread_ms: int = 1000,
) -> bytes:
    """One engine's batch: ``n`` samples taken from ``t0_ms`` over ``spread_ms``."""
    elapsed = rng.lognormal(4, 0.8, n).astype(np.int64)
    used, which = np.unique(rng.integers(0, labels, n), return_inverse=True)
    b = BatchBuilder()
    ok = rng.random(n) > 0.02
    b.add_many(
        ts_ms=t0_ms + np.sort(rng.integers(0, spread_ms, n)),
        elapsed_ms=elapsed,
        latency_ms=elapsed // 2,
        connect_ms=rng.integers(0, 4, n),
        bytes_recv=rng.integers(100, 5000, n),
        bytes_sent=np.full(n, 180),
        grp_threads=np.full(n, 50),
        all_threads=np.full(n, 100),
        labels=([f"GET /api/item/{i}" for i in used.tolist()], which),  # those used, as sidecars
        codes=(["500", "200"], ok.astype(np.int64)),
        success=ok,
        messages=([""], np.zeros(n, np.int64)),
    )
    return encode_batch(b.build(run_id=run, plan_id="plan", engine_id=engine, seq=seq))


def backlog_batches(args: argparse.Namespace) -> list[tuple[bytes, bytes]]:
    """The backlog as (key, value): each engine sends one batch per second of sample time."""
    rng = np.random.default_rng(1)
    t0 = (int(time.time()) - 3600) * 1000
    per_engine = args.samples // (args.runs * args.engines * args.per_batch)
    return [
        (result_key(f"bench-{r}", f"e{e}"),
         batch(f"bench-{r}", f"e{e}", seq, args.per_batch, args.labels, t0 + seq * 1000, rng))
        for seq in range(per_engine) for r in range(args.runs) for e in range(args.engines)
    ]  # fmt: skip


async def send(
    bootstrap: str, topic: str, batches: list[tuple[bytes, bytes]], at_once: bool = False
) -> dict[int, int]:
    """Each partition's last offset written. ``at_once``: in one transaction, so that workers
    (``read_committed``) see it all at once."""
    how = {"transactional_id": f"bench-{uuid.uuid4()}"} if at_once else {"acks": "all"}
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, compression_type="zstd", linger_ms=5,
                         max_request_size=2**24, **how)  # fmt: skip
    await p.start()
    try:
        async with p.transaction() if at_once else contextlib.nullcontext():
            sent = [await p.send(topic, value, key=key) for key, value in batches]
        await p.flush()
    finally:
        await p.stop()
    last: dict[int, int] = {}
    for meta in (f.result() for f in sent):
        last[meta.partition] = max(last.get(meta.partition, -1), meta.offset)
    return last


async def live(
    bootstrap: str,
    topic: str,
    run: str,
    rate: int,
    labels: int,
    seconds: int,
    engines: int,
    max_batch: int = 10_000,
) -> int:
    """``rate`` samples/s from ``engines`` engines for ``seconds``, as sidecars publish them: an
    engine's batch leaves when it holds ``max_batch`` samples, or at the send tick (every 500 ms,
    at the sidecars' phase of the wall clock) with what it holds; at the end, what it holds and
    its last batch (empty, marked ``last``)."""
    rng = np.random.default_rng(2)
    step, tick = 0.05, 0.5  # samples are taken every step; batches leave when full or at a tick
    per_step = rate * step / engines
    held, since_ms = [0.0] * engines, [int(time.time() * 1000)] * engines
    sent, seq = 0, 0
    async with kafka_io.producer(bootstrap) as p:

        async def emit(e: int, n: int, now_ms: int) -> None:
            nonlocal sent, seq  # each batch a sequence number above the last (or it is dropped)
            value = batch(run, f"e{e}", seq, n, labels, since_ms[e], rng,
                          spread_ms=max(1, now_ms - since_ms[e]))  # fmt: skip
            await p.send(topic, value, key=result_key(run, f"e{e}"))
            sent, seq, held[e], since_ms[e] = sent + n, seq + 1, held[e] - n, now_ms

        start = time.monotonic()
        send_at = time.monotonic() + until_tick(time.time(), tick, SEND_PHASE)
        for i in range(int(seconds / step)):
            now_ms = int(time.time() * 1000)
            ticked = time.monotonic() >= send_at
            for e in range(engines):
                held[e] += per_step
                while held[e] >= max_batch or (ticked and held[e] >= 1):
                    await emit(e, min(max_batch, int(held[e])), now_ms)
            if ticked:
                send_at = time.monotonic() + until_tick(time.time(), tick, SEND_PHASE)
            await asyncio.sleep(max(0.0, start + (i + 1) * step - time.monotonic()))
        for e in range(engines):  # the engines stop: their rest, then their last batch (empty)
            if held[e] >= 1:
                await emit(e, int(held[e]), int(time.time() * 1000))
            last = BatchBuilder().build(run_id=run, plan_id="plan", engine_id=f"e{e}", seq=seq)
            await p.send(
                topic, encode_batch(replace(last, last=True)), key=result_key(run, f"e{e}")
            )
            seq += 1
        await p.flush()
    return sent
