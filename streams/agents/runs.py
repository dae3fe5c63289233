"""The runs agent: progress, termination and pass/fail of every run, by the run's owner.

It reads ``run-events.v1`` (the control plane's run started / stop requested, and engine statuses
forwarded there by :mod:`streams.agents.deployments`) and ``metrics.v1`` (final per-second rows of
the merge agent), both keyed by run: the owner of partition *p* of both owns the run. The rules
live in the pure :class:`~streams.runs.RunsTable`, one per owned partition; this agent decodes
its input, ticks it on the flush timer (the clock: duration reached, engines lost, stop timed
out) and emits what it says, in the transaction that commits the table:

* ``StopEngines`` to ``commands.v1``, keyed by collection;
* every run's changed :class:`~wire.RunStatus` to ``run-status.v1`` (compacted: the operator
  view);
* ``RunEnded`` to ``run-events.v1``; an ended run's Prometheus series are dropped.
"""

from __future__ import annotations

import logging
import time
from typing import ClassVar

from prometheus_client import CollectorRegistry, Counter, Gauge

from streams.agents.table import TableOwner, TableWork
from streams.app import App
from streams.kafka_admin import Reachability
from streams.ledger import Record
from streams.outcomes import Outcome
from streams.prom import RunSeries
from streams.runs import RunRules, RunsState, RunsTable
from streams.settings import WorkerSettings
from streams.topics import FaustTopics
from wire import (
    DecodeError,
    RunStarted,
    RunStatus,
    StopEngines,
    collection_key,
    decode_metrics,
    decode_run_event,
    encode_message,
    run_key,
)

log = logging.getLogger(__name__)


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
    flush_phase = 0.1  # after the merge agents' rows are committed (at 0.85)
    state_type: ClassVar[type[RunsState]] = RunsState

    def __init__(
        self,
        app: App,
        settings: WorkerSettings,
        topics: FaustTopics,
        registry: CollectorRegistry,
        series: RunSeries,
        reach: Reachability,
    ) -> None:
        super().__init__(app, settings, registry)
        self.reach = reach
        self.topics = topics
        self.metrics_topic = topics.metrics.get_topic_name()
        self.series = series
        self.stats = RunsMetrics(registry)
        s = settings
        self.rules = RunRules(
            stop_grace_s=s.stop_grace_s, engine_lost_s=s.engine_lost_s,
            stop_timeout_s=s.stop_timeout_s, run_settle_s=s.run_settle_s,
            ended_run_ttl_s=s.ended_run_ttl_s, window_grace_s=s.window_grace_s,
            flush_interval_s=s.flush_interval_s,
        )  # fmt: skip
        self.tables: dict[int, RunsTable] = {}
        """Per owned partition, its table."""

    def opened(self, work: TableWork[RunsState]) -> None:
        table = self.tables[work.tp.partition] = RunsTable(
            work.state, self.rules, int(time.time() * 1000)
        )
        for run_id, live in table.live.items():
            self.series.set_collection(run_id, live.progress.run.collection_id)
        self._count()

    def dropped(self, work: TableWork[RunsState]) -> None:
        self.tables.pop(work.tp.partition, None)
        self._count()

    def _count(self) -> None:
        self.stats.tracked.set(sum(len(t.live) for t in self.tables.values()))

    def take(self, work: TableWork[RunsState], topic: str, value: bytes, now_ms: int) -> Outcome:
        table = self.tables[work.tp.partition]
        try:
            if topic == self.metrics_topic:
                outcome = table.on_metrics(decode_metrics(value), now_ms)
            else:
                event = decode_run_event(value)
                outcome = table.on_event(event, now_ms)
                if isinstance(event, RunStarted) and outcome is Outcome.APPLIED:
                    self.series.set_collection(event.run_id, event.collection_id)
        except DecodeError as exc:
            log.warning("runs: skipped a malformed message on %s: %s", topic, exc.reason)
            return Outcome.MALFORMED
        self._emit(work, table)
        self._count()
        return outcome

    def tick(self, work: TableWork[RunsState], now_ms: int) -> None:
        table = self.tables.get(work.tp.partition)
        if table is not None:
            work.changed |= table.tick(now_ms, self.reach.last_ok_ms)
            self._emit(work, table)
            self._count()

    def _emit(self, work: TableWork[RunsState], table: RunsTable) -> None:
        t = self.topics
        for out in table.take_output():
            if isinstance(out, StopEngines):
                work.out.append(Record(t.commands, collection_key(out.collection_id),
                                       encode_message(out)))  # fmt: skip
                self.stats.commands.inc()
                log.info("run %s: stop (%s)", out.run_id, out.reason)
            elif isinstance(out, RunStatus):
                work.out.append(Record(t.run_status, run_key(out.run_id), encode_message(out)))
            else:
                work.out.append(Record(t.run_events, run_key(out.run_id), encode_message(out)))
                self.stats.ended.labels(out.outcome.value).inc()
                self.series.drop_run(out.run_id)


def register(
    app: App,
    settings: WorkerSettings,
    topics: FaustTopics,
    registry: CollectorRegistry,
    series: RunSeries,
    reach: Reachability,
) -> Runs:
    runs = Runs(app, settings, topics, registry, series, reach)
    runs.register(topics.runs_source)
    return runs
