"""Helpers for the sidecar tests: real JMeter runs, and the samples on both ends."""

from __future__ import annotations

import asyncio
import csv
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from shibuya.dev import kafka_io
from shibuya.dev.jmeter import install, launcher
from wire import decode_batch

EXAMPLE_JMX = Path(__file__).resolve().parents[2] / "examples" / "two-samplers.jmx"

Sample = tuple[int, int, int, int, str, str, bool, int, int, int, int]


def start_jmeter(
    jtl: Path, target_port: int, *, duration_s: int, threads: int = 2, jmx: Path = EXAMPLE_JMX
) -> subprocess.Popen[bytes]:
    home = install()
    return subprocess.Popen(
        [
            "java",
            "-Xms128m",
            "-Xmx256m",
            "-jar",
            str(launcher(home)),
            "-n",
            "-t",
            str(jmx),
            "-l",
            str(jtl),
            "-j",
            str(jtl.with_suffix(".log")),
            f"-Jtarget.port={target_port}",
            f"-Jduration={duration_s}",
            f"-Jthreads={threads}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def reference_samples(jtl: Path) -> Counter[Sample]:
    """The JTL read by the csv module alone: what the sidecar must publish, exactly."""
    with jtl.open(newline="") as f:
        return Counter(
            (
                int(r["timeStamp"]),
                int(r["elapsed"]),
                int(r["Latency"]),
                int(r["Connect"]),
                r["label"],
                r["responseCode"],
                r["success"] == "true",
                int(r["bytes"]),
                int(r["sentBytes"]),
                int(r["grpThreads"]),
                int(r["allThreads"]),
            )
            for r in csv.DictReader(f)
        )


@dataclass
class Published:
    samples: Counter[Sample] = field(default_factory=Counter)
    batches: dict[tuple[str, str, int], bytes] = field(default_factory=dict)
    repeats: int = 0
    """Batches received again with the same (run, engine, seq); each must equal the first."""


async def consume_published(
    bootstrap: str, topic: str, expected: int, timeout_s: float = 60
) -> Published:
    """Read the topic until ``expected`` distinct samples arrived, deduping by (run, engine, seq)
    as the stream worker does."""
    out = Published()
    total = 0
    try:
        async with (
            asyncio.timeout(timeout_s),
            kafka_io.read_from_start(bootstrap, topic) as records,
        ):
            async for r in records:
                assert r.value is not None
                batch = decode_batch(r.value)
                ident = (batch.run_id, batch.engine_id, batch.seq)
                if ident in out.batches:
                    assert out.batches[ident] == r.value, f"batch {ident} came back different"
                    out.repeats += 1
                    continue
                out.batches[ident] = r.value
                ts = batch.ts_ms
                for i in range(len(batch)):
                    out.samples[
                        (
                            int(ts[i]),
                            int(batch.elapsed_ms[i]),
                            int(batch.latency_ms[i]),
                            int(batch.connect_ms[i]),
                            batch.labels[batch.label_idx[i]],
                            batch.codes[batch.code_idx[i]],
                            bool(batch.success[i]),
                            int(batch.bytes_recv[i]),
                            int(batch.bytes_sent[i]),
                            int(batch.grp_threads[i]),
                            int(batch.all_threads[i]),
                        )
                    ] += 1
                total += len(batch)
                if total >= expected:
                    return out
    except TimeoutError:
        pass
    return out


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 90) -> int | None:
    """SIGTERM and wait; SIGKILL if it does not end in time (then ``None``): never leave it."""
    proc.terminate()
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None
