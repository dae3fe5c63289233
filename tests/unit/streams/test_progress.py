"""The run state machine without Faust: every way a run ends, with its reason."""

from __future__ import annotations

from streams.progress import RunProgress, RunState
from wire import EngineState, EngineStatus, PlanSpec, RunOutcome, RunStarted

T0 = 1_764_288_000_000


def _run(engines: int = 2, duration_s: int = 60) -> RunProgress:
    started = RunStarted(
        run_id="r1",
        collection_id="c1",
        project_id="p1",
        started_ms=T0,
        plans=[PlanSpec(plan_id="p", engines=engines, threads_per_engine=5, duration_s=duration_s)],
    )
    return RunProgress(started, stop_grace_s=10, lost_after_s=15)


def _status(engine: int, state: EngineState, at_s: float) -> EngineStatus:
    return EngineStatus(
        engine_id=f"e{engine}", collection_id="c1", plan_id="p", engine_index=engine,
        state=state, ts_ms=T0 + int(at_s * 1000), run_id="r1",
    )  # fmt: skip


def _reasons(p: RunProgress) -> list[tuple[RunState, str]]:
    return [(t.to, t.reason) for t in p.transitions]


def test_a_run_finishes_when_every_engine_finishes() -> None:
    p = _run()
    for e in (0, 1):
        p.on_engine(_status(e, EngineState.RUNNING, 1 + e))
    assert p.state is RunState.RUNNING
    p.on_engine(_status(0, EngineState.FINISHED, 61))
    assert p.state is RunState.RUNNING
    p.on_engine(_status(1, EngineState.FINISHED, 62))
    assert p.outcome is RunOutcome.FINISHED
    assert _reasons(p) == [
        (RunState.DEPLOYING, "run started"),
        (RunState.RUNNING, "engine e0 running"),
        (RunState.FINISHED, "2 of 2 engines finished"),
    ]
    assert p.tick(T0 + 200_000) == []  # ended: nothing more to do


def test_the_owner_stops_a_run_past_its_duration_once() -> None:
    p = _run()
    for e in (0, 1):
        p.on_engine(_status(e, EngineState.RUNNING, 1))
    for e in (0, 1):
        p.on_engine(_status(e, EngineState.RUNNING, 60))
    assert p.tick(T0 + 69_000) == []  # duration 60 s + grace 10 s not reached
    (stop,) = p.tick(T0 + 70_000)
    assert stop.command_id == "r1.stop"
    assert stop.reason == "duration reached"
    assert p.tick(T0 + 71_000) == []  # sent once
    assert p.state is RunState.STOPPING
    for e in (0, 1):
        p.on_engine(_status(e, EngineState.FINISHED, 72))
    assert p.outcome is RunOutcome.FINISHED


def test_engines_that_go_silent_are_lost_and_a_run_of_lost_engines_fails() -> None:
    p = _run()
    for e in (0, 1):
        p.on_engine(_status(e, EngineState.RUNNING, 1))
    p.tick(T0 + 15_000)
    assert p.counts()["lost"] == 0
    p.tick(T0 + 16_000)
    assert p.counts()["lost"] == 2
    assert p.outcome is RunOutcome.FAILED
    assert _reasons(p)[-1] == (RunState.FAILED, "every engine lost")


def test_a_breach_aborts_the_run_with_the_criterion() -> None:
    p = _run()
    for e in (0, 1):
        p.on_engine(_status(e, EngineState.RUNNING, 1))
    (stop,) = p.on_breach("error_rate > 5% over 60s", 0.08, T0 + 30_000)
    assert "error_rate > 5% over 60s" in stop.reason
    assert p.on_stop_requested("user", T0 + 31_000) == []  # already stopping
    for e in (0, 1):
        p.on_engine(_status(e, EngineState.FINISHED, 32))
    assert p.outcome is RunOutcome.ABORTED
    assert _reasons(p)[-1] == (RunState.ABORTED, "ended early: error_rate > 5% over 60s")


def test_samples_and_their_seconds_are_counted() -> None:
    p = _run()
    p.on_second(10, 0)
    p.on_second(11, 500)
    p.on_second(12, 700)
    assert (p.samples, p.first_second, p.last_second) == (1200, 11, 12)


def test_a_run_that_does_not_stop_in_time_ends_with_its_stragglers_lost() -> None:
    p = _run(engines=3)
    p.stop_timeout_s = 20
    for e in (0, 1):
        p.on_engine(_status(e, EngineState.RUNNING, 1))  # engine 2 never reports
    assert len(p.on_stop_requested("alice", T0 + 10_000)) == 1
    p.on_engine(_status(0, EngineState.FINISHED, 12))
    for t in (14, 20, 26):
        p.on_engine(_status(1, EngineState.STOPPING, t))  # alive, but not stopping
        assert p.tick(T0 + t * 1000) == []
    assert p.state is RunState.STOPPING
    p.on_engine(_status(1, EngineState.STOPPING, 29))
    p.tick(T0 + 30_000)
    assert p.outcome is RunOutcome.ABORTED
    assert p.counts() == {"expected": 3, "started": 2, "finished": 1, "failed": 0, "lost": 2}
    assert [r for _, r in _reasons(p)[-3:]] == [
        "engine e1 did not stop",
        "1 engines never reported",
        "ended early: alice",
    ]


def test_a_run_no_engine_reports_for_fails_after_its_time() -> None:
    p = _run(duration_s=60)
    p.stop_timeout_s = 20
    (stop,) = p.tick(T0 + 70_000)
    assert stop.reason == "duration reached"
    p.tick(T0 + 90_000)
    assert p.outcome is RunOutcome.FAILED
    assert _reasons(p)[-1] == (RunState.FAILED, "every engine lost")


def test_a_new_owner_gives_engines_time_before_calling_them_lost() -> None:
    p = _run()
    for e in (0, 1):
        p.on_engine(_status(e, EngineState.RUNNING, 1))
    p.resume(T0 + 40_000)  # taken over long after the last heartbeat it knows of
    p.tick(T0 + 54_000)
    assert p.counts()["lost"] == 0
    p.on_engine(_status(0, EngineState.RUNNING, 2))  # a replayed old heartbeat
    p.tick(T0 + 55_000)
    assert p.counts()["lost"] == 2


def test_the_progress_survives_encoding_for_the_next_owner() -> None:
    import msgspec

    p = _run()
    p.on_engine(_status(0, EngineState.RUNNING, 1))
    p.on_second(5, 100, failures=3)
    p.on_stop_requested("alice", T0 + 10_000)
    again = msgspec.json.decode(msgspec.json.encode(p), type=RunProgress)
    assert again == p
    assert again.on_stop_requested("bob", T0 + 11_000) == []  # the stop is not sent twice
