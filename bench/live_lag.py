"""How far behind the engines a live view is: the run's live stream (SSE) with provisional rows
of open seconds, against its final rows alone (what the live view showed before) in the same run.

A real API (its ClickHouse sink), a real worker and broker at their default flush and grace
settings; ``--engines`` engines publish the samples of the current moment every 0.5 s (a
sidecar's longest batch interval) at ``--rate`` samples per second in all, over ``--labels``
labels, for ``--seconds`` seconds, while a client follows ``/api/runs/{id}/live``. For every
whole second of data, lag is measured from the end of that second (when the engines had written
all of it) to: the first row of it the stream gave, the first that held all its samples (the
final count), and its final row.

    .venv/bin/python -m bench.live_lag --bootstrap 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from shibuya.dev import kafka_io
from tests.support.api import FAST, ApiServer, make_collection, start_api
from tests.support.lifecycle import Harness
from tests.support.stream import Workers
from wire import BatchBuilder, EngineState, Topic, encode_batch, result_key

BATCH_S = 0.5


async def engines(bootstrap: str, topic: str, run_id: str, args: argparse.Namespace) -> None:
    """Samples of the current moment, every BATCH_S, from each engine, for ``args.seconds``."""
    rng = np.random.default_rng(1)
    per_batch = max(1, int(args.rate * BATCH_S / args.engines))
    labels = [f"GET /item/{i}" for i in range(args.labels)]
    async with kafka_io.producer(bootstrap) as p:
        start = time.time()
        for n in range(int(args.seconds / BATCH_S)):
            await asyncio.sleep(max(0.0, start + (n + 1) * BATCH_S - time.time()))
            now_ms = int(time.time() * 1000)
            for e in range(args.engines):
                b = BatchBuilder()
                ts = np.sort(now_ms - rng.integers(0, int(BATCH_S * 1000), per_batch))
                for i, t in enumerate(ts.tolist()):
                    b.add(ts_ms=t, elapsed_ms=int(rng.lognormal(4, 0.7)),
                          label=labels[i % len(labels)], code="200", success=True,
                          bytes_recv=1000)  # fmt: skip
                batch = b.build(run_id=run_id, plan_id="plan-a", engine_id=f"e{e}", seq=n)
                await p.send(topic, encode_batch(batch), key=result_key(run_id, f"e{e}"))


async def follow(api: ApiServer, run_id: str, until_s: float) -> list[tuple[str, int, int, float]]:
    """(event, second, samples, arrival time) of every row the live stream gave."""
    out: list[tuple[str, int, int, float]] = []
    headers = {"Authorization": f"Bearer {api.tokens['alice']}"}
    async with httpx.AsyncClient(base_url=api.base, headers=headers, timeout=None) as c:  # noqa: SIM117
        async with c.stream("GET", f"/api/runs/{run_id}/live") as r:
            kind = ""
            async for line in r.aiter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind in ("second", "provisional"):
                    row = json.loads(line[6:])
                    out.append((kind, row["second"], row["samples"], time.time()))
                    if kind == "second" and row["second"] >= until_s:
                        return out
                elif line.startswith("data: ") and kind == "end":
                    return out
    return out


def lags(
    events: list[tuple[str, int, int, float]], first_s: int, last_s: int
) -> dict[str, list[float]]:
    final = {s: (n, t) for k, s, n, t in events if k == "second"}
    out: dict[str, list[float]] = {"first row": [], "all its samples": [], "final row": []}
    for s in range(first_s, last_s + 1):
        if s not in final:
            continue
        count, final_t = final[s]
        mine = [(n, t) for _, sec, n, t in events if sec == s]
        out["first row"].append(mine[0][1] - (s + 1))
        out["all its samples"].append(next(t for n, t in mine if n == count) - (s + 1))
        out["final row"].append(final_t - (s + 1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--rate", type=int, default=2000, help="samples per second, all engines")
    ap.add_argument("--engines", type=int, default=4)
    ap.add_argument("--labels", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=30)
    args = ap.parse_args()
    prefix = f"b{uuid.uuid4().hex[:10]}"
    tmp = Path(tempfile.mkdtemp(prefix="shibuya-bench-live-"))
    console = Console()
    api = start_api(tmp / "api", f"sqlite:///{tmp / 'meta.db'}", KAFKA__BOOTSTRAP=args.bootstrap,
                    KAFKA__TOPIC_PREFIX=prefix, SINK__ENABLED="true",
                    SINK__GROUP_ID=f"{prefix}-sink", RUNS_GROUP_ID=f"{prefix}-runs",
                    COMMANDS_GROUP_ID=f"{prefix}-commands")  # fmt: skip
    workers = Workers(args.bootstrap, prefix, tmp)
    harness = Harness(args.bootstrap, prefix)
    try:
        workers.start(**FAST)
        workers.wait_settled()
        collection, _ = make_collection(api, duration_s=args.seconds + 30)
        with api.client("alice") as c:
            run_id = c.post(f"/api/collections/{collection}/runs").json()["id"]
        harness.add_engines(run_id, str(collection), args.engines, EngineState.RUNNING)
        start_s = int(time.time()) + 1
        last_s = start_s + args.seconds - 3  # whole seconds of data, the last one or two spared
        console.print(f"run {run_id}: {args.rate:,}/s from {args.engines} engines, "
                      f"{args.labels} labels, {args.seconds} s")  # fmt: skip

        async def both() -> list[tuple[str, int, int, float]]:
            feed = asyncio.create_task(engines(args.bootstrap, harness.topics[Topic.RESULTS],
                                               run_id, args))  # fmt: skip
            events = await asyncio.wait_for(follow(api, run_id, last_s), args.seconds + 60)
            await feed
            return events

        events = asyncio.run(both())
    finally:
        harness.close()
        workers.stop()
        api.stop()
    measured = lags(events, start_s + 1, last_s)
    base = np.percentile(measured["final row"], 90)
    table = Table(title=f"Live view lag behind the engines, seconds after a second ended "
                        f"({len(measured['final row'])} seconds; {args.rate:,} samples/s, "
                        f"{args.labels} labels)")  # fmt: skip
    for col in ("a second on the live view", "p50 s", "p90 s", "max s", "p90 / final rows'"):
        table.add_column(col, justify="left" if col.startswith("a ") else "right")
    for name, values in measured.items():
        v = np.array(values)
        table.add_row(name, f"{np.median(v):.2f}", f"{np.percentile(v, 90):.2f}",
                      f"{v.max():.2f}", f"{np.percentile(v, 90) / base:.2f}")  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    main()
