"""The runs of one partition, as their owner tracks them: a pure table.

Fed run events (``RunStarted``, ``RunStopRequested``, engine statuses) and final per-second rows,
and ticked by the clock, :class:`RunsTable` keeps a :class:`~streams.progress.RunProgress` and the
:class:`~streams.slo.RunCriteria` windows of each run and says what to emit, in order:

* one ``StopEngines`` per run, when time is up, a stop is requested or an ``abort`` criterion
  is breached;
* a ``RunStatus`` of every run that changed (the operator view);
* once a run's engines are done and its metrics complete (every published sample counted, or
  none for :attr:`RunRules.settle_ms` by the owner's clock), its final status with a verdict
  per criterion and one ``RunEnded``; then it forgets the run and only remembers, for
  ``ended_run_ttl_s``, that it ended.

The two input topics are read side by side, so a run's first rows may arrive before its
announcement: they wait as *early* rows (bounded in time, runs and bytes) and are applied, in
order, when it comes. A second's rows are evaluated once a row of a later second arrives (the
merge agent emits a second's rows in one transaction, in order), once no later second followed
for a while, or when the run ends. :mod:`streams.agents.runs` feeds the table, emits what it says
and commits :meth:`RunsTable.state` with it. Nothing here does I/O.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import msgspec

from streams.outcomes import Outcome
from streams.progress import RunProgress
from streams.slo import CriteriaSnapshot, RunCriteria
from wire import (
    EngineStatus,
    LateMetrics,
    MetricsMessage,
    MetricsRows,
    RunEnded,
    RunEvent,
    RunStarted,
    RunStatus,
    RunStopRequested,
    SecondMetrics,
    StopEngines,
)

log = logging.getLogger(__name__)

#: How long metrics of runs not announced yet are kept, for how many runs, and how many bytes of
#: them in all (as the state record holds them): the record is rewritten every flush and must
#: stay far below the state topic's message limit (streams/topics.py).
EARLY_S, EARLY_RUNS, EARLY_BYTES = 20, 50, 1 << 20


class TrackedRun(msgspec.Struct, kw_only=True):
    progress: RunProgress
    criteria: CriteriaSnapshot
    pending: list[SecondMetrics] = []
    """Rows of the newest second seen, not yet evaluated."""


class Early(msgspec.Struct, kw_only=True):
    first_ms: int
    messages: list[MetricsMessage] = []
    dropped: int = 0
    size: int = 0
    """Bytes of ``messages`` in the state record."""


class RunsState(msgspec.Struct, kw_only=True):
    """The state record of one run-events/metrics partition."""

    v: int = 1
    offsets: dict[str, int] = {}
    runs: dict[str, TrackedRun] = {}
    ended: dict[str, int] = {}
    """Runs that ended → when (remembered for ``ended_run_ttl_s``, to ignore what comes late)."""
    early: dict[str, Early] = {}
    """Metrics of runs not announced (yet), kept for ``EARLY_S``, for at most ``EARLY_RUNS``
    runs and ``EARLY_BYTES`` in all."""


@dataclass(frozen=True)
class RunRules:
    """The worker's settings the table acts on (:class:`streams.settings.WorkerSettings`)."""

    stop_grace_s: int = 30
    engine_lost_s: int = 30
    stop_timeout_s: int = 120
    run_settle_s: int = 15
    ended_run_ttl_s: int = 600
    window_grace_s: int = 3
    flush_interval_s: float = 0.5

    @property
    def stall_ms(self) -> float:
        """Ticks further apart than this mean the owner could not listen meanwhile (its flush
        waited on a broker that was away, the worker was paused): silence then is nobody's."""
        return (4 * self.flush_interval_s + 1) * 1000

    @property
    def deaf_ms(self) -> float:
        """Kafka not answering for longer than this: the owner hears nothing and judges nothing
        (under half the silence that loses an engine, so no engine is lost meanwhile)."""
        return min(self.stall_ms, self.engine_lost_s * 500)

    @property
    def quiet_second_ms(self) -> float:
        """A pending second no later second followed for this long is complete: the merge agent
        closes a quiet run's seconds after its grace period and a few flushes."""
        return (self.window_grace_s + 4 * self.flush_interval_s) * 1000

    @property
    def settle_ms(self) -> float:
        """An ended run whose samples are not all counted ends once none came for this long:
        ``run_settle_s``, never less than twice the time the merge agent takes to close a quiet
        run's last second (so that second's rows, which come last, are not cut off)."""
        return max(self.run_settle_s * 1000, 2 * self.quiet_second_ms)


@dataclass
class Live:
    """A tracked run in memory: its criteria as objects, not snapshots."""

    progress: RunProgress
    criteria: RunCriteria
    pending: list[SecondMetrics] = field(default_factory=list)
    changed: bool = True
    """Its status changed since it was last emitted."""
    news_ms: int = 0
    """The owner's clock when the run last counted samples, ended, or was taken over: an ended
    run's metrics settle :attr:`RunRules.settle_ms` after this (while samples still arrive — a
    backlog after a broker outage — it waits for them)."""

    def snapshot(self) -> TrackedRun:
        return TrackedRun(
            progress=self.progress, criteria=self.criteria.dump(), pending=list(self.pending)
        )


#: What the table asks its owner to emit.
Output = StopEngines | RunStatus | RunEnded


class RunsTable:
    def __init__(self, state: RunsState, rules: RunRules, now_ms: int) -> None:
        """The table of a partition just taken over, from its state record. The silence while
        nobody owned it proves nothing: its engines get ``engine_lost_s`` from ``now_ms``."""
        self.state = state
        self.rules = rules
        self.live: dict[str, Live] = {}
        for run_id, t in state.runs.items():
            t.progress.resume(now_ms)
            self.live[run_id] = Live(
                t.progress, RunCriteria.load(t.criteria), list(t.pending), news_ms=now_ms
            )
        self.out: list[Output] = []
        """What to emit, in order (the owner takes it with :meth:`take_output`)."""
        self.last_tick_ms = now_ms
        self.deaf_since: int | None = None
        """Since when the owner has not reached Kafka (``None`` while it does)."""

    def take_output(self) -> list[Output]:
        out, self.out = self.out, []
        return out

    # --- input ----------------------------------------------------------------------------

    def on_event(self, event: RunEvent, now_ms: int) -> Outcome:
        if isinstance(event, RunStarted):
            return self._start(event, now_ms)
        live = self.live.get(event.run_id or "")
        if live is None:
            return Outcome.IGNORED  # not ours to track (never started, or ended)
        if isinstance(event, EngineStatus):
            ended = live.progress.state.ended
            live.progress.on_engine(event)
            if live.progress.state.ended and not ended:
                live.news_ms = now_ms  # by its heartbeat's clock: settle by ours
        elif isinstance(event, RunStopRequested):
            self.out += live.progress.on_stop_requested(event.reason, event.requested_ms)
        else:
            return Outcome.IGNORED  # RunEnded: our own
        live.changed = True
        return Outcome.APPLIED

    def _start(self, run: RunStarted, now_ms: int) -> Outcome:
        if run.run_id in self.live or run.run_id in self.state.ended:
            return Outcome.IGNORED  # announced twice
        r = self.rules
        ramp_up_end_s = run.started_ms // 1000 + max(p.ramp_up_s for p in run.plans)
        self.live[run.run_id] = Live(
            RunProgress(run, stop_grace_s=r.stop_grace_s, lost_after_s=r.engine_lost_s,
                        stop_timeout_s=r.stop_timeout_s),
            RunCriteria.of_texts(run.thresholds, ramp_up_end_s),
        )  # fmt: skip
        early = self.state.early.pop(run.run_id, None)
        if early is not None:  # what came before the announcement, in its order
            for message in early.messages:
                self.on_metrics(message, now_ms)
            if early.dropped:
                log.warning("run %s: %d early rows were dropped (over %d bytes)", run.run_id,
                            early.dropped, EARLY_BYTES)  # fmt: skip
        return Outcome.APPLIED

    def on_metrics(self, message: MetricsMessage, now_ms: int) -> Outcome:
        live = self.live.get(message.run_id)
        if live is None:
            return self._early(message, now_ms)
        live.changed = True
        live.news_ms = now_ms
        if isinstance(message, LateMetrics):  # counted, too late for the criteria
            for row in message.rows:
                if row.plan_id is None and row.label is None:
                    live.progress.on_second(row.second_s, row.count, row.failures)
            return Outcome.APPLIED
        for row in message.rows if isinstance(message, MetricsRows) else (message,):
            if live.pending and row.second_s > live.pending[0].second_s:
                self._evaluate(live, now_ms)
            if live.criteria.wants(row):  # the state record holds only what criteria read
                live.pending.append(row)
            if row.plan_id is None and row.label is None:
                live.progress.on_second(row.second_s, row.count, row.failures)
        return Outcome.APPLIED

    def _early(self, message: MetricsMessage, now_ms: int) -> Outcome:
        if message.run_id in self.state.ended:
            return Outcome.IGNORED
        early = self.state.early.get(message.run_id)
        if early is None:
            if len(self.state.early) >= EARLY_RUNS:
                return Outcome.IGNORED
            early = self.state.early[message.run_id] = Early(first_ms=now_ms)
        size = len(msgspec.json.encode(message))
        if sum(e.size for e in self.state.early.values()) + size > EARLY_BYTES:
            early.dropped += 1
        else:
            early.messages.append(message)
            early.size += size
        return Outcome.APPLIED

    # --- the clock ------------------------------------------------------------------------

    def tick(self, now_ms: int, kafka_ok_ms: int | None = None) -> bool:
        """Act on every run; forget early rows and ended runs past their time. True if the
        table changed in a way worth committing even without new input.

        ``kafka_ok_ms``: when the owner last reached Kafka. While it does not, nothing is
        judged — the engines' silence is the broker's, and nothing could be sent anyway; when
        it does again (or after ticks stalled: a paused worker), the engines get their time
        again and a stop's timeout resumes where it was.
        """
        gap_ms = now_ms - self.last_tick_ms
        self.last_tick_ms = now_ms
        if kafka_ok_ms is not None and now_ms - kafka_ok_ms > self.rules.deaf_ms:
            if self.deaf_since is None:
                self.deaf_since = kafka_ok_ms
                log.warning("runs: Kafka does not answer; judging no engine until it does")
            return False
        if self.deaf_since is not None or gap_ms > self.rules.stall_ms:
            lost_ms = max(gap_ms, now_ms - self.deaf_since) if self.deaf_since else gap_ms
            self.deaf_since = None
            log.warning("runs: deaf for %.1f s (Kafka away, or the worker paused): %d runs' "
                        "engines get their time again", lost_ms / 1000, len(self.live))  # fmt: skip
            for live in self.live.values():
                live.progress.stalled(lost_ms, now_ms)
        for run_id in list(self.live):
            live = self.live[run_id]
            p = live.progress
            before = len(p.transitions)
            if live.pending and now_ms - (live.pending[0].second_s + 1) * 1000 > (
                self.rules.quiet_second_ms
            ):
                self._evaluate(live, now_ms)
            self.out += p.tick(now_ms, kafka_ok_ms)
            if p.state.ended and self._complete(live, now_ms):
                self._end(live, now_ms)
                del self.live[run_id]
                self.state.ended[run_id] = now_ms
            elif (live.changed or len(p.transitions) != before) and not p.state.ended:
                # An ended run's status goes out once, final, with its verdicts: until its
                # metrics are complete, readers keep the last status before the end.
                self.out.append(p.status(now_ms, live.criteria.results(final=False)))
            live.changed = False
        swept = self._sweep(now_ms)
        self.state.runs = {run_id: live.snapshot() for run_id, live in self.live.items()}
        return swept

    def _sweep(self, now_ms: int) -> bool:
        state, swept = self.state, False
        for run_id, early in list(state.early.items()):
            if now_ms - early.first_ms > EARLY_S * 1000:
                del state.early[run_id]  # never announced: not a run to track
                swept = True
        for run_id, at in list(state.ended.items()):
            if now_ms - at > self.rules.ended_run_ttl_s * 1000:
                del state.ended[run_id]
                swept = True
        return swept

    def _evaluate(self, live: Live, now_ms: int) -> None:
        """Evaluate the pending second: the breach of a criterion with ``abort`` stops the run
        (the others fail it at its end)."""
        rows, live.pending = live.pending, []
        if rows:
            for breach in live.criteria.observe(rows[0].second_s, rows):
                if breach.abort:
                    self.out += live.progress.on_breach(breach.criterion, breach.value, now_ms)

    def _complete(self, live: Live, now_ms: int) -> bool:
        """The run's metrics are all in: every sample its engines published is counted, or
        none came for :attr:`RunRules.settle_ms` since it ended."""
        p = live.progress
        quiet_from = max(p.ended_ms or now_ms, live.news_ms)
        return p.samples >= p.published or now_ms - quiet_from >= self.rules.settle_ms

    def _end(self, live: Live, now_ms: int) -> None:
        before = len(self.out)
        self._evaluate(live, now_ms)  # the last second (a stop is moot now)
        del self.out[before:]
        p = live.progress
        outcome = p.outcome
        assert outcome is not None
        status = p.status(now_ms, live.criteria.results(final=True))
        ended = RunEnded(
            run_id=p.run.run_id, ended_ms=p.ended_ms or now_ms, outcome=outcome,
            reason=status.reason,
        )  # fmt: skip
        self.out += [status, ended]
        log.info("run %s %s: %s; %d samples", p.run.run_id, outcome.value, status.reason, p.samples)
