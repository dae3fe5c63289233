"""The runs agent: progress, termination and pass/fail of every run, by the run's owner.

It reads ``run-events.v1`` (the control plane's run started / stop requested, and engine statuses
forwarded there by :mod:`streams.agents.deployments`) and ``metrics.v1`` (final per-second rows of
the merge agent), both keyed by run: the owner of partition *p* of both owns the run. Per run it
keeps a :class:`~streams.progress.RunProgress` and the :class:`~streams.slo.RunCriteria` windows;
the flush timer is the clock — duration reached, engines lost, stop timed out. It emits

* one ``StopEngines`` per run (``commands.v1``, keyed by collection), when time is up, a stop is
  requested or a criterion is breached;
* a :class:`~wire.RunStatus` of every run that changed (``run-status.v1``, compacted: the
  operator view);
* once the engines are done and the run's metrics are complete (every published sample counted,
  or ``run_settle_s`` passed), the final status with a verdict per criterion and one
  ``RunEnded`` (``run-events.v1``); then it forgets the run (its Prometheus series too) and only
  remembers, for ``ended_run_ttl_s``, that it ended.

A second's rows are evaluated once a row of a later second arrives (the merge agent emits a
second's rows in one transaction, in order), or when the run ends.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import ClassVar

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge

from streams.agents.table import TableOwner, TableWork
from streams.faust_app import App
from streams.ledger import Record
from streams.progress import RunProgress
from streams.prom import RunSeries
from streams.settings import WorkerSettings
from streams.slo import CriteriaSnapshot, RunCriteria
from streams.topics import Topics
from wire import (
    DecodeError,
    EngineStatus,
    LateMetrics,
    RunEnded,
    RunStarted,
    RunStatus,
    RunStopRequested,
    SecondMetrics,
    StopEngines,
    collection_key,
    decode_metrics,
    decode_run_event,
    encode_message,
    run_key,
)

log = logging.getLogger(__name__)


class TrackedRun(msgspec.Struct, kw_only=True):
    progress: RunProgress
    criteria: CriteriaSnapshot
    pending: list[SecondMetrics] = []
    """Rows of the newest second seen, not yet evaluated."""


class Early(msgspec.Struct, kw_only=True):
    first_ms: int
    messages: list[SecondMetrics | LateMetrics] = []
    dropped: int = 0


class RunsState(msgspec.Struct, kw_only=True):
    """The state record of one run-events/metrics partition."""

    v: int = 1
    offsets: dict[str, int] = {}
    runs: dict[str, TrackedRun] = {}
    ended: dict[str, int] = {}
    """Runs that ended → when (remembered for ``ended_run_ttl_s``, to ignore what comes late)."""
    early: dict[str, Early] = {}
    """Metrics of runs not announced (yet): the two topics are read side by side, so a run's
    first rows may come before its ``run_started``. Kept for ``EARLY_S``, at most
    ``EARLY_ROWS`` rows per run."""


#: How long, and how many rows, metrics of a run not announced yet are kept.
EARLY_S, EARLY_ROWS, EARLY_RUNS = 20, 1000, 50


@dataclass
class Live:
    """A tracked run in memory: its criteria as objects, not snapshots."""

    progress: RunProgress
    criteria: RunCriteria
    pending: list[SecondMetrics] = field(default_factory=list)
    changed: bool = True
    """Its status changed since it was last emitted."""

    def snapshot(self) -> TrackedRun:
        return TrackedRun(
            progress=self.progress, criteria=self.criteria.dump(), pending=list(self.pending)
        )


class RunsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.tracked = Gauge(
            "shibuya_runs_tracked",
            "runs this worker tracks (owned and not ended)",
            registry=registry,
        )
        self.ended = Counter(
            "shibuya_runs_ended",
            "runs ended by this worker, by outcome",
            ["outcome"],
            registry=registry,
        )
        self.commands = Counter("shibuya_run_commands", "stop commands emitted", registry=registry)


class Runs(TableOwner[RunsState]):
    name = "runs"
    state_type: ClassVar[type[RunsState]] = RunsState

    def __init__(
        self,
        app: App,
        settings: WorkerSettings,
        topics: Topics,
        registry: CollectorRegistry,
        series: RunSeries,
    ) -> None:
        super().__init__(app, settings, registry)
        self.topics = topics
        self.metrics_topic = topics.metrics.get_topic_name()
        self.series = series
        self.stats = RunsMetrics(registry)
        self.live: dict[int, dict[str, Live]] = {}
        """Per owned partition, its tracked runs."""

    # --- the table ------------------------------------------------------------------------

    def opened(self, work: TableWork[RunsState]) -> None:
        runs = self.live[work.tp.partition] = {}
        now_ms = int(time.time() * 1000)
        for run_id, t in work.state.runs.items():
            t.progress.resume(now_ms)
            runs[run_id] = Live(t.progress, RunCriteria.load(t.criteria), list(t.pending))
            self.series.collections[run_id] = t.progress.run.collection_id
        self._count()

    def dropped(self, work: TableWork[RunsState]) -> None:
        self.live.pop(work.tp.partition, None)
        self._count()

    def _count(self) -> None:
        self.stats.tracked.set(sum(len(r) for r in self.live.values()))

    # --- input ----------------------------------------------------------------------------

    def take(self, work: TableWork[RunsState], topic: str, value: bytes, now_ms: int) -> str:
        runs = self.live[work.tp.partition]
        try:
            if topic == self.metrics_topic:
                return self._metrics(work, runs, decode_metrics(value), now_ms)
            event = decode_run_event(value)
        except DecodeError as exc:
            log.warning("runs: skipped a malformed message on %s: %s", topic, exc.reason)
            return "malformed"
        if isinstance(event, RunStarted):
            if event.run_id in runs or event.run_id in work.state.ended:
                return "ignored"  # announced twice
            runs[event.run_id] = self._track(event)
            self.series.collections[event.run_id] = event.collection_id
            self._count()
            early = work.state.early.pop(event.run_id, None)
            if early is not None:  # what came before the announcement, in its order
                for message in early.messages:
                    self._metrics(work, runs, message, now_ms)
                if early.dropped:
                    log.warning("run %s: %d early rows were dropped (over %d)", event.run_id,
                                early.dropped, EARLY_ROWS)  # fmt: skip
            return "applied"
        live = runs.get(event.run_id or "")
        if live is None:
            return "ignored"  # not ours to track (never started, or ended)
        live.changed = True
        if isinstance(event, EngineStatus):
            live.progress.on_engine(event)
        elif isinstance(event, RunStopRequested):
            self._stop(work, live.progress.on_stop_requested(event.reason, event.requested_ms))
        else:
            return "ignored"  # RunEnded: our own
        return "applied"

    def _track(self, run: RunStarted) -> Live:
        s = self.settings
        ramp_up_end_s = run.started_ms // 1000 + max(p.ramp_up_s for p in run.plans)
        return Live(
            RunProgress(
                run,
                stop_grace_s=s.stop_grace_s,
                lost_after_s=s.engine_lost_s,
                stop_timeout_s=s.stop_timeout_s,
            ),
            RunCriteria.of_texts(run.thresholds, ramp_up_end_s),
        )

    def _metrics(
        self,
        work: TableWork[RunsState],
        runs: dict[str, Live],
        message: SecondMetrics | LateMetrics,
        now_ms: int,
    ) -> str:
        live = runs.get(message.run_id)
        if live is None:
            return self._early(work.state, message, now_ms)
        live.changed = True
        if isinstance(message, LateMetrics):  # counted, too late for the criteria
            for row in message.rows:
                if row.plan_id is None and row.label is None:
                    live.progress.on_second(row.second_s, row.count, row.failures)
            return "applied"
        row = message
        if live.pending and row.second_s > live.pending[0].second_s:
            self._stop(work, self._evaluate(live, now_ms))
        if live.criteria.wants(row):  # the state record holds only what criteria read
            live.pending.append(row)
        if row.plan_id is None and row.label is None:
            live.progress.on_second(row.second_s, row.count, row.failures)
        return "applied"

    def _early(self, state: RunsState, message: SecondMetrics | LateMetrics, now_ms: int) -> str:
        if message.run_id in state.ended:
            return "ignored"
        early = state.early.get(message.run_id)
        if early is None:
            if len(state.early) >= EARLY_RUNS:
                return "ignored"
            early = state.early[message.run_id] = Early(first_ms=now_ms)
        if len(early.messages) >= EARLY_ROWS:
            early.dropped += 1
        else:
            early.messages.append(message)
        return "applied"

    # --- acting ---------------------------------------------------------------------------

    def _evaluate(self, live: Live, now_ms: int) -> list[StopEngines]:
        """Evaluate the pending second: a breach stops the run."""
        rows, live.pending = live.pending, []
        if not rows:
            return []
        commands = []
        for breach in live.criteria.observe(rows[0].second_s, rows):
            commands += live.progress.on_breach(breach.criterion, breach.value, now_ms)
        return commands

    def _stop(self, work: TableWork[RunsState], commands: list[StopEngines]) -> None:
        for c in commands:
            work.out.append(
                Record(self.topics.commands, collection_key(c.collection_id), encode_message(c))
            )
            self.stats.commands.inc()
            log.info("run %s: stop (%s)", c.run_id, c.reason)

    def tick(self, work: TableWork[RunsState], now_ms: int) -> None:
        runs = self.live.get(work.tp.partition, {})
        state = work.state
        for run_id in list(runs):
            live = runs[run_id]
            p = live.progress
            before = len(p.transitions)
            if self._second_done(live, now_ms):
                self._stop(work, self._evaluate(live, now_ms))
            self._stop(work, p.tick(now_ms))
            if p.state.ended and self._complete(p, now_ms):
                self._end(work, live, now_ms)
                del runs[run_id]
                state.ended[run_id] = now_ms
            elif (live.changed or len(p.transitions) != before) and not p.state.ended:
                # An ended run's status goes out once, final, with its verdicts: until its
                # metrics are complete, readers keep the last status before the end.
                self._status(work, live, now_ms, final=False)
            live.changed = False
        for run_id, early in list(state.early.items()):
            if now_ms - early.first_ms > EARLY_S * 1000:
                del state.early[run_id]  # never announced: not a run to track
                work.changed = True
        for run_id, at in list(state.ended.items()):
            if now_ms - at > self.settings.ended_run_ttl_s * 1000:
                del state.ended[run_id]
                work.changed = True
        state.runs = {run_id: live.snapshot() for run_id, live in runs.items()}
        self._count()

    def _second_done(self, live: Live, now_ms: int) -> bool:
        """A pending second no later second has followed for a while is complete too (the
        merge agent closes a quiet run's seconds after its grace period)."""
        if not live.pending:
            return False
        idle_ms = (self.settings.window_grace_s + 4 * self.settings.flush_interval_s) * 1000
        return now_ms - (live.pending[0].second_s + 1) * 1000 > idle_ms

    def _complete(self, p: RunProgress, now_ms: int) -> bool:
        """The run's metrics are all in: every sample its engines published is counted, or
        they had ``run_settle_s`` to arrive."""
        ended_ms = p.ended_ms or now_ms
        return p.samples >= p.published or now_ms - ended_ms >= self.settings.run_settle_s * 1000

    def _end(self, work: TableWork[RunsState], live: Live, now_ms: int) -> None:
        self._evaluate(live, now_ms)  # the last second (a stop is moot now)
        p = live.progress
        outcome = p.outcome
        assert outcome is not None
        status = self._status(work, live, now_ms, final=True)
        ended = RunEnded(
            run_id=p.run.run_id,
            ended_ms=p.ended_ms or now_ms,
            outcome=outcome,
            reason=status.reason,
        )
        work.out.append(
            Record(self.topics.run_events, run_key(p.run.run_id), encode_message(ended))
        )
        self.stats.ended.labels(outcome.value).inc()
        self.series.drop_run(p.run.run_id)
        log.info("run %s %s: %s; %d samples", p.run.run_id, outcome.value, status.reason, p.samples)

    def _status(
        self, work: TableWork[RunsState], live: Live, now_ms: int, *, final: bool
    ) -> RunStatus:
        status = live.progress.status(now_ms, live.criteria.results(final))
        work.out.append(
            Record(self.topics.run_status, run_key(status.run_id), encode_message(status))
        )
        return status


def register(
    app: App,
    settings: WorkerSettings,
    topics: Topics,
    registry: CollectorRegistry,
    series: RunSeries,
) -> Runs:
    runs = Runs(app, settings, topics, registry, series)
    runs.register(topics.runs_source)
    return runs
