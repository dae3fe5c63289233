"""The main job: Kafka, a stream worker, engines, live progress and a final report.

By default the engines are real: one ``shibuya sidecar run`` per engine, started by a start
command over Kafka, each running JMeter against a local HTTP target and publishing its results.
With ``simulate`` they are simulated publishers (which also send a redelivered batch and a corrupt
message, to show both are handled). Everything else is the real pipeline: a real broker, a real
Faust worker in its own process, the ClickHouse sink (embedded engine) in this one. Live progress
shows what the worker counted per engine (from its committed state records, as any operator view
may read them); the final report is read from ClickHouse: per-label counts, errors and
percentiles, checked against what the engines produced. With real engines the run is announced
to the stream with pass/fail criteria: the worker tracks it, ends it, and its final status —
outcome, reason, a verdict per criterion — is read back from ClickHouse too.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from control.results.queries import Results, RunReport, Summary
from control.results.store import Store
from engine_sidecar.jtl import JtlParser, detect_format
from shibuya.dev import jmeter, kafka_io, target
from shibuya.dev.engines import LocalEngines, new_token, plan_server, start_command
from shibuya.dev.kafka import KafkaBroker
from shibuya.dev.procs import ServiceError, free_port, port_open, wait_for
from shibuya.dev.progress import engine_counts
from shibuya.dev.results import running_sink
from shibuya.dev.worker_proc import WorkerProcess
from streams.wire import (
    BatchBuilder,
    EngineState,
    EngineStatus,
    PlanSpec,
    ResultBatch,
    RunStarted,
    RunStatus,
    Topic,
    collection_key,
    decode_message,
    encode_batch,
    encode_message,
    result_key,
    run_key,
    topic_name,
)

APP_ID = "shibuya-streams"
#: What the demo's run must meet (lenient: a loaded laptop must pass them).
CRITERIA = ("p95(elapsed) > 2s for 10s", "error_rate > 5% over 10s")
THREADS = 2
EXAMPLE_JMX = Path(__file__).resolve().parents[2] / "examples" / "two-samplers.jmx"
LABELS = ("GET /", 'POST /login, "json"')


@dataclass
class EngineTally:
    state: str = "starting"
    samples: int = 0
    """Samples the engine produced: sent (simulated), or published and finally in its JTL."""
    counted: int = 0
    done: bool = False


@dataclass
class Demo:
    engines: int = 4
    seconds: int = 20
    rate: int = 2000
    simulate: bool = False
    bootstrap: str = "127.0.0.1:9092"
    data_dir: Path = Path(".shibuya")
    console: Console = field(default_factory=Console)
    run_id: str = field(default_factory=lambda: f"demo-{uuid.uuid4().hex[:8]}")
    tallies: dict[str, EngineTally] = field(default_factory=dict)

    def run(self) -> bool:
        t0 = time.monotonic()
        with contextlib.ExitStack() as stack:
            try:
                self._kafka(stack)
                worker = self._worker(stack)
                store = self._clickhouse(stack)
                asyncio.run(self._drive(worker))
                report = self._results(store)
                status = None if self.simulate else self._run_status(store)
            except (ServiceError, TimeoutError) as exc:
                self.console.print(f"[red]demo failed:[/red] {exc or 'timed out'}")
                return False
            worker_counts = _settled_counts(worker) if self.simulate else {}
        exact = self._report(report, worker_counts, time.monotonic() - t0)
        return exact and (status is None or self._verdict(status))

    # --- services ---------------------------------------------------------------------------

    def _kafka(self, stack: contextlib.ExitStack) -> None:
        host, _, port = self.bootstrap.rpartition(":")
        if port_open(host, int(port)):
            self.console.print(f"Kafka: using the broker at {self.bootstrap}")
            return
        broker = KafkaBroker(
            (self.data_dir / "kafka").resolve(), port=int(port), controller_port=free_port()
        )
        self.console.print(f"Kafka: starting a broker on {self.bootstrap} …")
        seconds = broker.start()
        stack.callback(self._stop, "Kafka", broker.stop)
        self.console.print(f"Kafka: ready in {seconds:.1f}s (pid {broker.pid()})")

    def _worker(self, stack: contextlib.ExitStack) -> WorkerProcess:
        worker = WorkerProcess.start(
            bootstrap=self.bootstrap,
            app_id=APP_ID,
            data_dir=self.data_dir,
            log=(self.data_dir / "logs" / "worker.log").resolve(),
        )
        stack.callback(self._stop, "worker", worker.stop)
        self.console.print(f"Stream worker: started (pid {worker.pid}, log {worker.log})")
        return worker

    def _clickhouse(self, stack: contextlib.ExitStack) -> Store:
        path = (self.data_dir / "clickhouse").resolve()
        store = Store.open(f"chdb:///{path}")
        stack.callback(self._stop, "ClickHouse", store.close)
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

    def _run_status(self, store: Store) -> RunStatus:
        """The run's final status, as the stream ended it."""
        results = Results(store)

        def final() -> RunStatus | None:
            status = asyncio.run(results.run_status(self.run_id))
            return status if status is not None and status.ended_ms is not None else None

        self.console.print("Waiting for the stream to end the run …")
        if not wait_for(lambda: final() is not None, timeout_s=90, interval_s=0.5):
            raise ServiceError(f"the stream did not end run {self.run_id} in 90s")
        status = final()
        assert status is not None
        return status

    def _verdict(self, status: RunStatus) -> bool:
        table = Table(title=f"run {status.run_id}: criteria (the stream's verdicts)")
        for col in ("criterion", "verdict", "breached at", "value"):
            table.add_column(col)
        for c in status.criteria:
            verdict = "[green]passed[/green]" if c.passed else "[red]failed[/red]"
            at = (
                ""
                if c.breach_second_s is None
                else f"{c.breach_second_s - status.started_ms // 1000:+d}s"
            )
            table.add_row(c.criterion, verdict, at, "" if c.value is None else f"{c.value:g}")
        self.console.print(table)
        e = status.engines
        self.console.print(
            f"Run {status.state}: {status.reason}; engines {e.finished} of {e.expected} finished, "
            f"{e.lost} lost; {status.samples:,} samples"
        )
        return status.state == "finished" and all(c.passed for c in status.criteria)

    def _stop(self, name: str, stop: Callable[[], object]) -> None:
        stop()
        self.console.print(f"{name}: stopped")

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
        if self.simulate:
            self.tallies = {f"{self.run_id}-engine-{i}": EngineTally() for i in range(self.engines)}
            self.console.print(
                f"Run {self.run_id}: {self.engines} simulated engines × {self.rate} samples/s "
                f"for {self.seconds}s, batches of ≤500 ms"
            )
        else:
            self.tallies = {f"demo-plan-{i}": EngineTally() for i in range(self.engines)}
            self.console.print(
                f"Run {self.run_id}: {self.engines} JMeter engines × {THREADS} threads for "
                f"{self.seconds}s against a local HTTP target ({EXAMPLE_JMX.name})"
            )
        watcher = asyncio.create_task(self._watch())
        try:
            with Live(self._table(), console=self.console, refresh_per_second=4) as live:
                refresher = asyncio.create_task(self._refresh(live))
                if self.simulate:
                    await self._produce(results)
                else:
                    await self._run_engines()
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

    async def _run_engines(self) -> None:
        """Real engines: sidecars started here, one start command, until all have finished."""
        commands, status = topic_name(Topic.COMMANDS), topic_name(Topic.ENGINE_STATUS)
        # The control plane owns these topics; until it exists, the demo creates them.
        await kafka_io.create_topics(self.bootstrap, [commands, status], partitions=4)
        jmx, token = EXAMPLE_JMX.read_bytes(), new_token()
        with target.serve() as target_port, plan_server({"plan.jmx": jmx}, token) as base_url:
            engines = LocalEngines(
                bootstrap=self.bootstrap,
                work_dir=(self.data_dir / "engines").resolve(),
                jmeter_home=jmeter.install(),
                target_port=target_port,
                collection_id="demo",
                plan_id="plan",
                count=self.engines,
            )
            engines.start()
            try:
                command = start_command(
                    run_id=self.run_id,
                    collection_id="demo",
                    plan_id="plan",
                    engines=self.engines,
                    threads=THREADS,
                    duration_s=self.seconds,
                    jmx=jmx,
                    base_url=base_url,
                    token=token,
                )
                announced = RunStarted(
                    run_id=self.run_id,
                    collection_id="demo",
                    project_id="demo",
                    started_ms=int(time.time() * 1000),
                    plans=[
                        PlanSpec(
                            plan_id="plan",
                            engines=self.engines,
                            threads_per_engine=THREADS,
                            duration_s=self.seconds,
                        )
                    ],
                    thresholds=list(CRITERIA),
                )
                async with kafka_io.producer(self.bootstrap) as producer:
                    # What the control plane will do: announce the run, then start its engines.
                    await producer.send_and_wait(
                        topic_name(Topic.RUN_EVENTS),
                        encode_message(announced),
                        key=run_key(self.run_id),
                    )
                    await producer.send_and_wait(
                        commands, encode_message(command), key=collection_key("demo")
                    )
                await self._follow_engines(status, command.command_id)
            finally:
                engines.stop()
        for index in range(self.engines):
            jtl = engines.folder(index) / "runs" / self.run_id / "results.jtl"
            self.tallies[engines.engine_id(index)].samples = _samples_in(jtl)

    async def _follow_engines(self, status_topic: str, command_id: str) -> None:
        async with (
            asyncio.timeout(self.seconds + 120),
            kafka_io.read_from_start(self.bootstrap, status_topic) as records,
        ):
            async for record in records:
                if record.value is None:
                    continue
                s = decode_message(record.value, EngineStatus)
                tally = self.tallies.get(s.engine_id)
                if tally is None or s.command_id != command_id:
                    continue
                tally.state = s.state.value
                tally.samples = s.samples_published
                tally.done = s.state in (EngineState.FINISHED, EngineState.FAILED)
                if all(t.done for t in self.tallies.values()):
                    return

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
        produced = "samples sent" if self.simulate else "samples published (at the end: in JTL)"
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
        produced = "in the engines' JTL files" if not self.simulate else "sent"
        self.console.print(
            f"\nReport: {total:,} samples {produced}, {counted:,} counted by the worker, "
            f"{stored:,} in ClickHouse — {verdict}; late samples: {report.late_samples:,}; "
            f"{seconds:.1f}s in all"
        )
        if not self.simulate:
            failed = [e for e, t in self.tallies.items() if t.state != EngineState.FINISHED.value]
            self.console.print(f"Engines not finished: {len(failed)}")
            return exact and not failed and total > 0
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


def _samples_in(jtl: Path) -> int:
    """Samples in a JTL file, by the sidecar's parser (what JMeter wrote, read independently)."""
    try:
        data = jtl.read_bytes()
    except FileNotFoundError:
        return 0
    if b"\n" not in data:
        return 0
    parser = JtlParser(detect_format(data[: data.index(b"\n") + 1]))
    builder = BatchBuilder()
    parser.feed(data, builder)
    return len(builder)
