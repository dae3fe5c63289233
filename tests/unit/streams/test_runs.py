"""The runs table without Faust: early rows, the clock's sweeps, when a run's metrics are
complete, and what it asks its owner to emit."""

from __future__ import annotations

import msgspec
import pytest

from streams.outcomes import Outcome
from streams.runs import EARLY_BYTES, EARLY_RUNS, EARLY_S, RunRules, RunsState, RunsTable
from wire import (
    EngineState,
    EngineStatus,
    Histogram,
    LateMetrics,
    MetricsRows,
    PlanSpec,
    RunEnded,
    RunOutcome,
    RunStarted,
    RunStatus,
    RunStopRequested,
    SecondMetrics,
    StopEngines,
)

T0 = 1_764_288_000_000
S0 = T0 // 1000
RULES = RunRules(stop_grace_s=5, engine_lost_s=15, stop_timeout_s=60, run_settle_s=10,
                 ended_run_ttl_s=100, window_grace_s=2, flush_interval_s=0.5)  # fmt: skip


def _started(run: str = "r1", thresholds: tuple[str, ...] = ()) -> RunStarted:
    return RunStarted(
        run_id=run, collection_id="c1", project_id="p1", started_ms=T0,
        plans=[PlanSpec(plan_id="p", engines=1, threads_per_engine=1, duration_s=30)],
        thresholds=list(thresholds),
    )  # fmt: skip


def _row(second: int, count: int = 10, failures: int = 0, run: str = "r1") -> SecondMetrics:
    empty = Histogram(scheme="log2pct", buckets=[], counts=[])
    return SecondMetrics(
        run_id=run, plan_id=None, label=None, second_s=S0 + second, count=count,
        failures=failures, codes={"200": count - failures}, bytes_recv=0, bytes_sent=0,
        elapsed_min_ms=1, elapsed_max_ms=1, elapsed_sum_ms=count, threads_max=1,
        elapsed=empty, latency=empty, connect=empty,
    )  # fmt: skip


def _engine(state: EngineState, at_s: float, published: int = 0) -> EngineStatus:
    return EngineStatus(
        engine_id="e0", collection_id="c1", plan_id="p", engine_index=0, state=state,
        ts_ms=T0 + int(at_s * 1000), run_id="r1", samples_published=published,
    )  # fmt: skip


def _at(s: float) -> int:
    return T0 + int(s * 1000)


def _kinds(table: RunsTable) -> list[str]:
    return [type(o).__name__ for o in table.take_output()]


def test_rows_before_the_announcement_wait_and_count_in_their_order() -> None:
    table = RunsTable(RunsState(), RULES, _at(0))
    assert table.on_metrics(_row(0, 7), _at(1)) is Outcome.APPLIED
    assert table.on_metrics(LateMetrics(run_id="r1", source="x@1", rows=[_row(0, 3)]), _at(1)) \
        is Outcome.APPLIED  # fmt: skip
    assert table.live == {}
    assert table.on_event(_started(), _at(2)) is Outcome.APPLIED
    assert table.state.early == {}
    assert table.live["r1"].progress.samples == 10
    assert table.on_event(_started(), _at(2)) is Outcome.IGNORED  # announced twice


def test_early_rows_are_bounded_in_bytes_runs_and_time() -> None:
    table = RunsTable(RunsState(), RULES, _at(0))
    full = Histogram(scheme="log2pct", buckets=list(range(300)), counts=[1] * 300)
    heavy = [msgspec.structs.replace(_row(i, 300), elapsed=full, latency=full, connect=full)
             for i in range(100, 1000)]  # fmt: skip
    fits = EARLY_BYTES // len(msgspec.json.encode(heavy[0]))
    for row in heavy[: fits + 5]:
        table.on_metrics(row, _at(1))
    assert table.state.early["r1"].dropped == 5
    assert len(msgspec.json.encode(table.state)) <= EARLY_BYTES + 1024  # the record, bounded
    another = msgspec.structs.replace(heavy[-1], run_id="x")
    assert table.on_metrics(another, _at(1)) is Outcome.APPLIED
    assert table.state.early["x"].dropped == 1  # the bytes are spent for every run
    table = RunsTable(RunsState(), RULES, _at(0))
    for r in range(EARLY_RUNS + 3):
        table.on_metrics(_row(0, 1, run=f"x{r}"), _at(1))
    assert len(table.state.early) == EARLY_RUNS
    assert table.on_metrics(_row(0, 1, run="late-comer"), _at(1)) is Outcome.IGNORED
    assert not table.tick(_at(1 + EARLY_S))  # not yet
    assert table.tick(_at(1 + EARLY_S + 1))  # never announced: forgotten, a change to commit
    assert table.state.early == {}


def test_a_run_ends_once_its_metrics_are_complete_and_is_remembered_then_forgotten() -> None:
    table = RunsTable(RunsState(), RULES, _at(0))
    table.on_event(_started(), _at(0))
    table.on_event(_engine(EngineState.RUNNING, 1), _at(1))
    table.on_metrics(_row(1, 10), _at(3))
    table.tick(_at(3))
    assert _kinds(table) == ["RunStatus"]
    table.tick(_at(3.5))
    assert _kinds(table) == []  # nothing changed: no status
    table.on_event(_engine(EngineState.FINISHED, 4, published=15), _at(4))
    table.tick(_at(5))
    assert _kinds(table) == []  # ended, but 5 of 15 samples still to come: no status before
    table.on_metrics(_row(2, 5), _at(7))
    table.tick(_at(7))
    final, ended = table.take_output()
    assert isinstance(final, RunStatus)
    assert isinstance(ended, RunEnded)
    assert (final.state, final.samples, final.ended_ms) == ("finished", 15, _at(4))
    assert ended.outcome is RunOutcome.FINISHED
    assert table.live == {}
    assert table.state.runs == {}
    assert table.on_metrics(_row(3, 1), _at(8)) is Outcome.IGNORED  # ended: not early either
    assert not table.tick(_at(7 + RULES.ended_run_ttl_s))
    assert table.tick(_at(8 + RULES.ended_run_ttl_s))
    assert table.state.ended == {}


def test_a_run_whose_samples_never_all_arrive_ends_after_the_settle_time() -> None:
    table = RunsTable(RunsState(), RULES, _at(0))
    table.on_event(_started(), _at(0))
    table.on_event(_engine(EngineState.FINISHED, 1, published=100), _at(1))
    table.tick(_at(1 + RULES.run_settle_s - 1))
    assert "RunEnded" not in _kinds(table)
    table.tick(_at(1 + RULES.run_settle_s))
    assert _kinds(table) == ["RunStatus", "RunEnded"]


def test_an_ended_run_settles_from_the_last_samples_counted_by_the_owner_s_clock() -> None:
    """After a broker outage a sidecar's backlog is counted after its engine finished: while
    samples still arrive the run waits, and its engines' clocks do not shorten the wait."""
    settle = RULES.run_settle_s
    table = RunsTable(RunsState(), RULES, _at(0))
    table.on_event(_started(), _at(0))
    table.on_event(_engine(EngineState.FINISHED, 1, published=100), _at(1))
    table.on_metrics(_row(1, 60), _at(settle))  # the backlog, still arriving
    table.tick(_at(1 + settle))
    assert "RunEnded" not in _kinds(table)
    table.on_metrics(_row(2, 40), _at(2 * settle - 1))
    table.tick(_at(2 * settle - 1))
    final = next(o for o in table.take_output() if isinstance(o, RunStatus))
    assert (final.samples, final.samples_missing, final.ended_ms) == (100, 0, _at(1))

    table = RunsTable(RunsState(), RULES, _at(0))  # the last heartbeat, heard late
    table.on_event(_started(), _at(0))
    table.on_event(_engine(EngineState.FINISHED, 1, published=100), _at(30))
    table.tick(_at(30 + settle - 1))
    assert "RunEnded" not in _kinds(table)
    table.tick(_at(30 + settle))
    assert _kinds(table) == ["RunStatus", "RunEnded"]


def test_the_settle_time_covers_the_close_of_a_quiet_run_s_last_second() -> None:
    assert RunRules(run_settle_s=0).settle_ms == 2 * (3 + 4 * 0.5) * 1000
    assert RunRules(run_settle_s=15).settle_ms == 15_000


def test_a_new_owner_gives_an_ended_run_s_metrics_the_settle_time_again() -> None:
    settle = RULES.run_settle_s
    table = RunsTable(RunsState(), RULES, _at(0))
    table.on_event(_started(), _at(0))
    table.on_event(_engine(EngineState.FINISHED, 1, published=100), _at(1))
    table.tick(_at(2))
    state = msgspec.json.decode(msgspec.json.encode(table.state), type=RunsState)
    table = RunsTable(state, RULES, _at(1 + settle))  # taken over, its input still to read
    table.tick(_at(1 + settle))
    assert "RunEnded" not in _kinds(table)
    table.tick(_at(1 + 2 * settle))
    assert _kinds(table) == ["RunStatus", "RunEnded"]


def test_a_breach_stops_the_run_once_when_a_later_second_arrives_or_the_second_goes_quiet() -> None:
    table = RunsTable(RunsState(), RULES, _at(0))
    table.on_event(_started(thresholds=("failures > 4 for 1s abort",)), _at(0))
    table.on_metrics(_row(1, 10, failures=5), _at(3))
    assert _kinds(table) == []  # second 1 may still get rows
    table.on_metrics(_row(2, 10), _at(4))
    (stop,) = table.take_output()
    assert isinstance(stop, StopEngines)
    assert stop.reason.startswith("criterion breached")
    table.on_event(RunStopRequested(run_id="r1", requested_ms=_at(5), reason="me"), _at(5))
    assert _kinds(table) == []  # stopping already: one stop per run

    quiet = RunsTable(RunsState(), RULES, _at(0))
    quiet.on_event(_started(thresholds=("failures > 4 for 1s abort",)), _at(0))
    quiet.on_metrics(_row(1, 10, failures=5), _at(3))
    quiet.tick(_at(2) + int(RULES.quiet_second_ms))
    assert "StopEngines" not in _kinds(quiet)
    quiet.tick(_at(2) + int(RULES.quiet_second_ms) + 1)
    assert "StopEngines" in _kinds(quiet)


def test_a_breach_without_abort_lets_the_run_finish_and_fails_it_at_the_end() -> None:
    table = RunsTable(RunsState(), RULES, _at(0))
    table.on_event(_started(thresholds=("failures > 4 for 1s", "error_rate > 1% over run")), _at(0))
    table.on_event(_engine(EngineState.RUNNING, 1), _at(1))
    table.on_metrics(_row(1, 10, failures=5), _at(2))
    table.on_metrics(_row(2, 10), _at(3))
    table.tick(_at(3))
    assert "StopEngines" not in _kinds(table)
    table.on_event(_engine(EngineState.FINISHED, 4, published=20), _at(4))
    table.tick(_at(4))
    final, ended = table.take_output()
    assert isinstance(final, RunStatus)
    assert isinstance(ended, RunEnded)
    assert ended.outcome is RunOutcome.FINISHED  # not aborted: it ran its course
    verdicts = {c.criterion: (c.passed, c.breach_second_s, c.value) for c in final.criteria}
    assert verdicts == {"failures > 4 for 1s": (False, S0 + 1, 5.0),
                        "error_rate > 1% over run": (False, S0 + 2, 0.25)}  # fmt: skip


@pytest.mark.parametrize("heard_s", [1, 10])
def test_a_new_owner_rebuilds_the_table_and_gives_engines_time_from_the_takeover(
    heard_s: int,
) -> None:
    table = RunsTable(RunsState(), RULES, _at(0))
    table.on_event(_started(thresholds=("failures > 100 over 10s",)), _at(0))
    table.on_event(_engine(EngineState.RUNNING, heard_s), _at(heard_s))
    table.on_metrics(_row(1, 100, failures=50), _at(3))
    table.tick(_at(3))
    record = msgspec.json.encode(table.state)  # what the ledger commits

    taken_over_s = 100  # long after the last heartbeat: nobody owned the partition meanwhile
    again = RunsTable(msgspec.json.decode(record, type=RunsState), RULES, _at(taken_over_s))
    assert again.live["r1"].progress.samples == 100
    again.tick(_at(taken_over_s + RULES.engine_lost_s - 1))
    assert again.live["r1"].progress.counts()["lost"] == 0
    again.on_metrics(_row(2, 100, failures=51), _at(taken_over_s))  # the window carried over
    again.on_metrics(_row(3, 10), _at(taken_over_s))
    assert "StopEngines" in _kinds(again)


def test_engines_are_not_lost_while_their_owner_could_not_listen() -> None:
    """A broker outage silences the heartbeats and stalls the owner's flushes alike: when the
    ticks come back, the engines get their time again, and a stop's timeout did not run."""
    table = RunsTable(RunsState(), RULES, _at(0))
    table.on_event(_started(), _at(0))
    for s in range(1, 20):
        table.on_event(_engine(EngineState.RUNNING, s), _at(s))  # a heartbeat a second
        table.tick(_at(s))
    table.on_event(RunStopRequested(run_id="r1", requested_ms=_at(19), reason="me"), _at(19))
    table.tick(_at(19))  # stopping now; then the broker goes away for 5 minutes
    table.tick(_at(19 + 300))
    p = table.live["r1"].progress
    assert p.counts()["lost"] == 0
    assert not p.state.ended  # the stop timeout (60 s) did not run out meanwhile
    table.take_output()
    for s in range(320, 320 + RULES.engine_lost_s):  # still silent after it came back: lost
        table.tick(_at(s))
    final = [o for o in table.take_output() if isinstance(o, RunStatus)][-1]
    assert (final.state, final.engines.lost) == ("failed", 1)


def test_a_run_that_lost_samples_says_so_in_its_final_status() -> None:
    table = RunsTable(RunsState(), RULES, _at(0))
    table.on_event(_started(), _at(0))
    table.on_metrics(_row(1, 10), _at(2))
    table.on_event(_engine(EngineState.FINISHED, 3, published=15), _at(3))
    table.tick(_at(3 + RULES.run_settle_s))
    final = next(o for o in table.take_output() if isinstance(o, RunStatus))
    assert final.samples_missing == 5
    assert final.reason.endswith("5 samples the engines published were not counted")


def test_silence_while_kafka_does_not_answer_is_nobody_s_fault() -> None:
    """The owner's ticks go on (nothing to commit), but Kafka does not answer: no engine is lost
    however long that lasts, and once it answers the engines get their time again."""
    table = RunsTable(RunsState(), RULES, _at(0))
    table.on_event(_started(), _at(0))
    table.on_event(_engine(EngineState.RUNNING, 1), _at(1))
    table.tick(_at(2), kafka_ok_ms=_at(1.5))
    table.take_output()  # running
    for s in range(3, 200):
        assert not table.tick(_at(s), kafka_ok_ms=_at(1.5))  # nothing judged meanwhile
    assert table.take_output() == []
    table.tick(_at(200), kafka_ok_ms=_at(200))
    assert table.live["r1"].progress.counts()["lost"] == 0
    for s in range(201, 200 + RULES.engine_lost_s + 1):  # Kafka answers, the engine does not
        table.tick(_at(s), kafka_ok_ms=_at(s))
    final = [o for o in table.take_output() if isinstance(o, RunStatus)][-1]
    assert (final.state, final.engines.lost) == ("failed", 1)


@pytest.mark.parametrize("early", [False, True])
def test_rows_in_one_record_count_as_the_same_rows_one_by_one(early: bool) -> None:
    """A window's rows travel together (``MetricsRows``); the table reads them as if each had
    come alone, before the run's announcement too."""
    rows = [_row(1, 10, failures=5), _row(2, 10), _row(3, 7, failures=1)]

    def fed(messages: list[SecondMetrics | MetricsRows]) -> tuple[list[bytes], bytes]:
        table = RunsTable(RunsState(), RULES, _at(0))
        started = _started(thresholds=("failures > 4 for 1s abort",))
        if not early:
            table.on_event(started, _at(0))
        for m in messages:
            assert table.on_metrics(m, _at(4)) is Outcome.APPLIED
        if early:
            table.on_event(started, _at(4))
        table.tick(_at(5))
        out = [msgspec.json.encode(o) for o in table.take_output()]
        return out, msgspec.json.encode(table.live["r1"].snapshot())

    one_by_one = fed(list(rows))
    assert any(b'"kind":"stop"' in o for o in one_by_one[0])  # second 1's breach
    assert fed([MetricsRows(run_id="r1", rows=rows)]) == one_by_one
