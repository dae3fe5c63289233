"""The pipeline alone, with simulated engines: ``shibuya dev demo --simulate``.

Simulated engines publish result batches straight to Kafka (and a redelivered batch and a
corrupt message, to show both are handled); everything else is the real pipeline: a real broker,
a real Faust worker in its own process, the ClickHouse sink (embedded engine) in this one. Live
progress shows what the worker counted per engine (from its committed state records, as any
operator view may read them); the final report is read from ClickHouse and checked against what
the engines sent. The main job through the API is :mod:`shibuya.dev.main_job`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from control.results.clickhouse import Store
from control.results.queries import Results, RunReport, Summary
from control.schedulers.processes import wait_for
from shibuya.dev import kafka_io
from shibuya.dev.engine_counts import engine_counts
from shibuya.dev.main_job import kafka, stopped
from shibuya.dev.procs import ServiceError
from shibuya.dev.results import running_sink
from shibuya.dev.worker_proc import WorkerProcess
from wire import (
    BatchBuilder,
    ResultBatch,
    Topic,
    encode_batch,
    result_key,
    topic_name,
)

APP_ID = "shibuya-streams"
#: What the demo's run must meet (lenient: a loaded laptop must pass them).
LABELS = ("GET /", 'POST /login, "json"')


@dataclass
class EngineTally:
    state: str = "starting"
    samples: int = 0
    """Samples the engine sent."""
    counted: int = 0
    done: bool = False


@dataclass
class Demo:
    engines: int = 4
    seconds: int = 20
    rate: int = 2000
    bootstrap: str = "127.0.0.1:9092"
    data_dir: Path = Path(".shibuya")
    console: Console = field(default_factory=Console)
    run_id: str = field(default_factory=lambda: f"demo-{uuid.uuid4().hex[:8]}")
    tallies: dict[str, EngineTally] = field(default_factory=dict)

    def run(self) -> bool:
        t0 = time.monotonic()
        with contextlib.ExitStack() as stack:
            try:
                kafka(stack, self.bootstrap, self.data_dir, self.console)
                worker = self._worker(stack)
                store = self._clickhouse(stack)
                asyncio.run(self._drive(worker))
                report = self._results(store)
            except (ServiceError, TimeoutError) as exc:
                self.console.print(f"[red]demo failed:[/red] {exc or 'timed out'}")
                return False
            worker_counts = _settled_counts(worker)
        exact = self._report(report, worker_counts, time.monotonic() - t0)
        return exact

    # --- services ---------------------------------------------------------------------------

    def _worker(self, stack: contextlib.ExitStack) -> WorkerProcess:
        worker = WorkerProcess.start(
            bootstrap=self.bootstrap,
            app_id=APP_ID,
            data_dir=self.data_dir,
            log=(self.data_dir / "logs" / "worker.log").resolve(),
        )
        stack.callback(stopped, self.console, "worker", worker.stop)
        self.console.print(f"Stream worker: started (pid {worker.pid}, log {worker.log})")
        return worker

    def _clickhouse(self, stack: contextlib.ExitStack) -> Store:
        path = (self.data_dir / "clickhouse").resolve()
        store = Store.open(f"chdb:///{path}")
        stack.callback(stopped, self.console, "ClickHouse", store.close)
        stack.enter_context(running_sink(store, self.bootstrap, topic_prefix="shibuya"))
        self.console.print(f"ClickHouse: embedded engine at {path}, sink running")
        return store

    def _results(self, store: Store) -> RunReport:
        """The run's report once ClickHouse holds every sample the engines produced."""
        expected = sum(t.samples for t in self.tallies.values())
        results = Results(store)

        def complete() -> bool:
            report = asyncio.run(results.report(self.run_id))
            return report.total is not None and report.total.count >= expected

        self.console.print("Waiting for the last windows to close and reach ClickHouse …")
        wait_for(complete, timeout_s=60, interval_s=0.5)
        return asyncio.run(results.report(self.run_id))

    # --- the load ---------------------------------------------------------------------------

    async def _drive(self, worker: WorkerProcess) -> None:
        results = topic_name(Topic.RESULTS)
        waiting = asyncio.create_task(
            kafka_io.wait_for_topics(self.bootstrap, [results], timeout_s=60)
        )
        while not waiting.done():
            if worker.exited():
                waiting.cancel()
                raise ServiceError(f"the worker exited:\n{worker.log_tail()}")
            await asyncio.sleep(0.1)
        if waiting.exception():
            raise ServiceError(f"the worker did not create {results} in 60s:\n{worker.log_tail()}")
        self.tallies = {f"{self.run_id}-engine-{i}": EngineTally() for i in range(self.engines)}
        self.console.print(
            f"Run {self.run_id}: {self.engines} simulated engines × {self.rate} samples/s "
            f"for {self.seconds}s, batches of ≤500 ms"
        )
        watcher = asyncio.create_task(self._watch())
        try:
            with Live(self._table(), console=self.console, refresh_per_second=4) as live:
                refresher = asyncio.create_task(self._refresh(live))
                await self._produce(results)
                async with asyncio.timeout(60):
                    while not self._exact():
                        await asyncio.sleep(0.1)
                refresher.cancel()
                live.update(self._table())
            self.console.print()
        finally:
            watcher.cancel()

    async def _produce(self, results: str) -> None:
        rng = random.Random(7)
        seqs = dict.fromkeys(self.tallies, 0)
        per_tick = max(1, self.rate // 2)  # one batch per engine every 500 ms
        last: tuple[bytes, bytes] | None = None
        async with kafka_io.producer(self.bootstrap) as producer:
            start = time.monotonic()
            for tick in range(self.seconds * 2):
                now_ms = int(time.time() * 1000)
                for engine, tally in self.tallies.items():
                    batch = _simulated_batch(
                        rng, per_tick, now_ms, self.run_id, engine, seqs[engine]
                    )
                    seqs[engine] += 1
                    key, value = result_key(self.run_id, engine), encode_batch(batch)
                    await producer.send(results, value, key=key)
                    tally.state = "simulated"
                    tally.samples += len(batch)
                    last = (key, value)
                await producer.flush()
                await asyncio.sleep(max(0.0, start + (tick + 1) * 0.5 - time.monotonic()))
            # What a restarted sidecar may do: send its last batch again. And a corrupt message.
            assert last is not None
            await producer.send_and_wait(results, last[1], key=last[0])
            await producer.send_and_wait(results, b"\x00not a result batch", key=last[0])

    async def _watch(self) -> None:
        async with engine_counts(self.bootstrap, APP_ID) as updates:
            async for counts in updates:
                for key, samples in counts.items():
                    run_id, _, engine = key.partition("/")
                    if run_id == self.run_id and engine in self.tallies:
                        self.tallies[engine].counted = samples

    async def _refresh(self, live: Live) -> None:
        while True:
            live.update(self._table())
            await asyncio.sleep(0.25)

    def _exact(self) -> bool:
        return all(t.counted == t.samples for t in self.tallies.values())

    def _table(self) -> Table:
        table = Table(title=f"run {self.run_id}")
        produced = "samples sent"
        for col in ("engine", "state", produced, "samples counted by the worker"):
            table.add_column(col, justify="left" if col in ("engine", "state") else "right")
        for engine, t in self.tallies.items():
            table.add_row(engine, t.state, f"{t.samples:,}", f"{t.counted:,}")
        sent = sum(t.samples for t in self.tallies.values())
        counted = sum(t.counted for t in self.tallies.values())
        table.add_row("total", "", f"{sent:,}", f"{counted:,}", style="bold")
        return table

    def _report(self, report: RunReport, worker_counts: dict[str, float], seconds: float) -> bool:
        total = sum(t.samples for t in self.tallies.values())
        counted = sum(t.counted for t in self.tallies.values())
        stored = report.total.count if report.total else 0
        exact = self._exact() and bool(self.tallies) and stored == total
        verdict = "[green]exact[/green]" if exact else "[red]NOT exact[/red]"
        self.console.print(_report_table(report))
        self.console.print(
            f"\nReport: {total:,} samples sent, {counted:,} counted by the worker, "
            f"{stored:,} in ClickHouse — {verdict}; late samples: {report.late_samples:,}; "
            f"{seconds:.1f}s in all"
        )
        duplicates = worker_counts.get(DUPLICATES, 0)
        malformed = worker_counts.get(MALFORMED, 0)
        self.console.print(
            f"Redelivered batches dropped: {duplicates:.0f}; "
            f"malformed messages skipped and reported: {malformed:.0f}"
        )
        return exact and duplicates >= 1 and malformed >= 1


def _report_table(report: RunReport) -> Table:
    table = Table(title=f"run {report.run_id}: results from ClickHouse")
    table.add_column("label")
    for col in ("samples", "errors", "req/s", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(col, justify="right")

    def row(name: str, s: Summary, style: str = "") -> None:
        p = s.percentiles
        table.add_row(
            name,
            f"{s.count:,}",
            f"{s.failures:,} ({s.error_rate:.1%})",
            f"{s.rps:,.1f}",
            *(f"{p[q]:,.1f}" if p[q] < 100 else f"{p[q]:,.0f}" for q in (0.5, 0.9, 0.95, 0.99)),
            f"{s.elapsed_max_ms:,}",
            style=style,
        )

    for s in report.labels:
        row(s.label or "", s)
    if report.total is not None:
        row("all labels", report.total, "bold")
    return table


def _simulated_batch(
    rng: random.Random, n: int, now_ms: int, run_id: str, engine: str, seq: int
) -> ResultBatch:
    b = BatchBuilder()
    for i in range(n):
        label = LABELS[i % 2]
        failed = rng.random() < 0.01
        elapsed = int(rng.lognormvariate(3.5 if i % 2 else 4.5, 0.6))
        b.add(
            ts_ms=now_ms - 500 + i * 500 // n,
            elapsed_ms=elapsed,
            latency_ms=elapsed * 2 // 3,
            connect_ms=rng.randint(0, 3),
            label=label,
            code="500" if failed else "200",
            success=not failed,
            bytes_recv=rng.randint(500, 5000),
            bytes_sent=180,
            grp_threads=50,
            all_threads=100,
            message="Internal Server Error" if failed else "",
        )
    return b.build(run_id=run_id, plan_id="demo-plan", engine_id=engine, seq=seq)


DUPLICATES = 'shibuya_ingest_batches_total{outcome="duplicate"}'
MALFORMED = 'shibuya_ingest_batches_total{outcome="malformed"}'


def _settled_counts(worker: WorkerProcess) -> dict[str, float]:
    """The worker's counters once it has handled the redelivered and the corrupt message.

    Those two travel after the last counted batch; stopping the worker before it handled them
    would leave them for its next start (and this report would miss them).
    """
    counts: dict[str, float] = {}

    def settled() -> bool:
        counts.update(worker.metrics())
        return counts.get(DUPLICATES, 0) >= 1 and counts.get(MALFORMED, 0) >= 1

    wait_for(settled, timeout_s=30)
    return counts
