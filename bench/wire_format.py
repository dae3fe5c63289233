"""Wire-format benchmark: cost per sample to encode and decode a raw result batch.

    .venv/bin/python bench/wire_format.py [--samples-per-batch 2000] [--batches 200]

Decoding means "from Kafka message bytes to numpy columns ready to aggregate", because that is
what the stream worker needs; row formats pay for building the columns. The baseline is per-sample
JSON rows, measured in the same run. Sizes are given raw and after lz4 (the producer's codec).
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import cramjam
import msgspec
import numpy as np
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from wire import COLUMNS, BatchBuilder, ResultBatch, decode_batch, encode_batch

FIELDS = (
    "ts_ms",
    "elapsed_ms",
    "latency_ms",
    "connect_ms",
    "label",
    "code",
    "success",
    "bytes_recv",
    "bytes_sent",
    "grp_threads",
    "all_threads",
    "message",
)


def make_batches(n_batches: int, per_batch: int, seed: int = 7) -> list[ResultBatch]:
    rng = np.random.default_rng(seed)
    labels = [f'GET /api/item/{i}, "quoted"' for i in range(20)]
    out = []
    t0 = 1_764_000_000_000
    for seq in range(n_batches):
        b = BatchBuilder()
        elapsed = rng.lognormal(4, 0.8, per_batch).astype(int)
        fail = rng.random(per_batch) < 0.02
        for i in range(per_batch):
            b.add(
                ts_ms=t0 + seq * 100 + i // 20,
                elapsed_ms=int(elapsed[i]),
                latency_ms=int(elapsed[i]) // 2,
                connect_ms=int(elapsed[i]) // 10,
                label=labels[i % 20],
                code="500" if fail[i] else "200",
                success=not fail[i],
                bytes_recv=1000 + i % 300,
                bytes_sent=200,
                grp_threads=50,
                all_threads=100,
                message="Internal Server Error" if fail[i] else "",
            )
        out.append(b.build(run_id="run-1", plan_id="plan-1", engine_id="e-0", seq=seq))
    return out


def rows_of(batch: ResultBatch) -> list[dict[str, Any]]:
    ts = batch.ts_ms
    return [
        {
            "ts_ms": int(ts[i]),
            "elapsed_ms": int(batch.elapsed_ms[i]),
            "latency_ms": int(batch.latency_ms[i]),
            "connect_ms": int(batch.connect_ms[i]),
            "label": batch.labels[batch.label_idx[i]],
            "code": batch.codes[batch.code_idx[i]],
            "success": bool(batch.success[i]),
            "bytes_recv": int(batch.bytes_recv[i]),
            "bytes_sent": int(batch.bytes_sent[i]),
            "grp_threads": int(batch.grp_threads[i]),
            "all_threads": int(batch.all_threads[i]),
            "message": batch.messages[batch.message_idx[i]],
        }
        for i in range(len(batch))
    ]


def columns_from_rows(rows: list[Any], as_tuples: bool) -> dict[str, np.ndarray[Any, Any]]:
    """What a row-format consumer must do before it can aggregate with numpy."""
    get: dict[str, Any]
    if as_tuples:
        get = dict(zip(FIELDS, zip(*rows, strict=True), strict=True))
    else:
        get = {f: [r[f] for r in rows] for f in FIELDS}
    out = {f: np.asarray(get[f]) for f in FIELDS if f not in ("label", "code", "message")}
    for f in ("label", "code", "message"):
        _, idx = np.unique(np.asarray(get[f], dtype=object), return_inverse=True)
        out[f] = idx.astype(np.uint16)
    return out


json_enc, json_dec = msgspec.json.Encoder(), msgspec.json.Decoder()
mp_enc, mp_dec = msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder()


def arrow_encode(batch: ResultBatch) -> bytes:
    arrays = [pa.array(batch.column(name)) for name, _ in COLUMNS]
    table = pa.record_batch(arrays, names=[n for n, _ in COLUMNS])
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_batch(table)
    return sink.getvalue()


def arrow_decode(data: bytes) -> dict[str, np.ndarray[Any, Any]]:
    rb = pa.ipc.open_stream(data).read_next_batch()
    return {name: rb.column(i).to_numpy() for i, name in enumerate(rb.schema.names)}


Codec = tuple[Callable[[ResultBatch], bytes], Callable[[bytes], object]]


def codecs() -> dict[str, Codec]:
    return {
        "JSON rows (baseline)": (
            lambda b: json_enc.encode(rows_of(b)),
            lambda d: columns_from_rows(json_dec.decode(d), False),
        ),
        "msgpack rows (tuples)": (
            lambda b: mp_enc.encode([tuple(r.values()) for r in rows_of(b)]),
            lambda d: columns_from_rows(mp_dec.decode(d), True),
        ),
        "Arrow IPC columns": (arrow_encode, arrow_decode),
        "SHRB v1 columns (ours)": (encode_batch, decode_batch),
    }


def _each(fn: Callable[[Any], object], items: list[Any]) -> None:
    for item in items:
        fn(item)


def best_ns(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter_ns()
        fn()
        best = min(best, time.perf_counter_ns() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--samples-per-batch", type=int, default=2000)
    ap.add_argument("--batches", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    batches = make_batches(args.batches, args.samples_per_batch)
    n = args.batches * args.samples_per_batch
    table = Table(
        title=f"raw result batch: {args.batches} × {args.samples_per_batch} samples, "
        f"best of {args.repeat}"
    )
    for col in (
        "format",
        "encode ns/sample",
        "decode ns/sample",
        "decode vs baseline",
        "bytes/sample",
        "lz4 bytes/sample",
        "lz4 decompress ns/sample",
    ):
        table.add_column(col, justify="right" if col != "format" else "left")
    baseline = None
    for name, (enc, dec) in codecs().items():
        payloads = [enc(b) for b in batches]
        enc_ns = best_ns(partial(_each, enc, batches), args.repeat) / n
        dec_ns = best_ns(partial(_each, dec, payloads), args.repeat) / n
        compressed = [bytes(cramjam.lz4.compress_block(p)) for p in payloads]
        unz_ns = best_ns(partial(_each, cramjam.lz4.decompress_block, compressed), args.repeat) / n
        baseline = baseline or dec_ns
        table.add_row(
            name,
            f"{enc_ns:,.1f}",
            f"{dec_ns:,.1f}",
            f"{dec_ns / baseline:.3f}",
            f"{sum(map(len, payloads)) / n:.1f}",
            f"{sum(map(len, compressed)) / n:.1f}",
            f"{unz_ns:.2f}",
        )
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
