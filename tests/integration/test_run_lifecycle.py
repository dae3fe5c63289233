"""Runs end — on duration, when their engines finish, on engine loss, on each kind of criterion
breach — exactly once, decided by the run's owner among two real workers, even when that owner
is SIGKILLed; idle collections are purged once, busy ones never; ended runs leave no state.

Real broker and worker processes; engines are heartbeats (tests/support/lifecycle.py)
and generated result batches. Time is shortened through the workers' settings.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest

from control.results.clickhouse import Store
from control.results.queries import Results
from shibuya.dev import kafka_io
from shibuya.dev.results import running_sink
from tests.support.lifecycle import Harness
from tests.support.stream import Workers, generate, partition_of, send
from tests.support.waiting import wait_until
from wire import EngineState, RunStatus, Topic, topic_name

pytestmark = pytest.mark.integration

FAST = {
    "STOP_GRACE_S": "1",
    "ENGINE_LOST_S": "3",
    "STOP_TIMEOUT_S": "30",
    "RUN_SETTLE_S": "20",
    "ENDED_RUN_TTL_S": "600",
    "GC_IDLE_S": "4",
    "PURGE_SETTLE_S": "2",
}


@pytest.fixture
def harness(kafka_bootstrap: str, unique: str) -> Iterator[Harness]:
    h = Harness(kafka_bootstrap, unique)
    yield h
    h.close()


def _reasons(h: Harness, run_id: str) -> list[tuple[str, str]]:
    status = h.decisions.status(run_id)
    assert status is not None
    return [(t.state, t.reason) for t in status.transitions]


def test_runs_end_on_duration_finish_loss_and_each_kind_of_breach(
    workers: Workers, harness: Harness, unique: str, kafka_bootstrap: str, clickhouse: Store
) -> None:
    for _ in range(2):
        workers.start(**FAST)
    workers.wait_settled()
    h = harness
    runs = {name: f"{name}-{unique}" for name in ("dur", "fin", "lost", "p95", "err", "rps")}
    h.start_run(runs["dur"], "c-dur", duration_s=2)
    h.start_run(runs["fin"], "c-fin", duration_s=600)
    h.start_run(runs["lost"], "c-lost", duration_s=600)
    criteria = {
        "p95": "p95(elapsed) > 50ms for 3s abort",
        "err": "error_rate > 2% over 4s abort",
        "rps": "rps < 100000 for 2s after ramp-up abort",
    }
    generated = {}
    for name, criterion in criteria.items():
        h.start_run(
            runs[name],
            f"c-{name}",
            duration_s=600,
            thresholds=(criterion, "p99(connect) > 1s for 5s"),
        )
        gen = generate(runs[name], seconds=8, start_s=int(time.time()) - 2)
        generated[name] = gen
        h.set_engines(f"c-{name}-e0", published=gen.expected.total)
        send(kafka_bootstrap, h.topics[Topic.RESULTS], gen.messages)
    h.set_engines("c-fin-", state=EngineState.FINISHED)
    wait_until(
        "the lost run to run", lambda: _state(h, runs["lost"]) == "running", 60, workers.logs
    )
    h.set_engines("c-lost-", beating=False)

    def unended() -> str:
        return f"not ended: {[r for r in runs.values() if not h.decisions.ended_of(r)]}\n" + (
            "\n".join(f"{r}: {h.decisions.status(r)}" for r in runs.values())
        )

    wait_until("every run to end", lambda: all(h.decisions.ended_of(r) for r in runs.values()), 90,
               lambda: unended() + workers.logs())  # fmt: skip

    outcome = {name: h.decisions.ended_of(r)[0] for name, r in runs.items()}
    assert outcome["dur"].outcome == "finished"
    assert ("stopping", "duration reached") in _reasons(h, runs["dur"])
    assert outcome["fin"].outcome == "finished"
    assert outcome["fin"].reason == "2 of 2 engines finished"
    assert h.decisions.stops_of(runs["fin"]) == []  # finished on its own: no stop
    assert outcome["lost"].outcome == "failed"
    assert outcome["lost"].reason == "every engine lost"
    assert sorted(r for s, r in _reasons(h, runs["lost"]) if r.endswith(" lost")) == [
        "engine c-lost-e0 lost",
        "engine c-lost-e1 lost",
        "every engine lost",
    ]  # fmt: skip
    for name, criterion in criteria.items():
        run_id = runs[name]
        assert outcome[name].outcome == "aborted", name
        assert outcome[name].reason == f"ended early: {criterion}"
        (stop,) = h.decisions.stops_of(run_id)
        assert stop.reason.startswith(f"criterion breached: {criterion} (value ")
        final = h.decisions.status(run_id)
        assert final is not None
        verdicts = {c.criterion: c.passed for c in final.criteria}
        assert verdicts == {criterion: False, "p99(connect) > 1s for 5s": True}
        assert final.samples == generated[name].expected.total  # every sample, exactly
        assert final.state == "aborted"
        assert final.engines.expected == 2
    for run_id in runs.values():
        assert len(h.decisions.ended_of(run_id)) == 1
        assert len(h.decisions.stops_of(run_id)) <= 1
        # A run's status says it ended once: the final one, every criterion decided.
        (final,) = [s for s in h.decisions.ended_statuses if s.run_id == run_id]
        assert all(c.passed is not None for c in final.criteria)

    # The operator view, without asking a worker: the sink keeps every run's latest status.
    with running_sink(clickhouse, kafka_bootstrap, topic_prefix=unique):
        stored = Results(clickhouse)

        def final_statuses() -> dict[str, RunStatus | None]:
            return {r: asyncio.run(stored.run_status(r)) for r in runs.values()}

        wait_until("final statuses in ClickHouse", lambda: all(
            s is not None and s.ended_ms is not None for s in final_statuses().values()
        ), 60, workers.logs)  # fmt: skip
    assert final_statuses() == {r: h.decisions.status(r) for r in runs.values()}

    # Ended runs leave no state behind: not tracked, no Prometheus series.
    wait_until("runs to be forgotten", lambda: workers.summed("shibuya_runs_tracked") == 0, 30,
               workers.logs)  # fmt: skip
    exported = [s for w in workers.started for s in w.metrics() if "run=" in s]
    assert not [s for s in exported if any(r in s for r in runs.values())]


def _state(h: Harness, run_id: str) -> str | None:
    status = h.decisions.status(run_id)
    return status.state if status else None


def test_a_new_owner_neither_forgets_nor_repeats_a_termination(
    workers: Workers, harness: Harness, unique: str
) -> None:
    """Two runs on one partition; the owner is SIGKILLed after it stopped one (whose engines are
    slow to finish) and before the other's time is up."""
    partitions = workers.partitions
    first = f"a-{unique}"
    second = next(
        r for i in range(1000)
        if partition_of(r := f"b{i}-{unique}", partitions) == partition_of(first, partitions)
    )  # fmt: skip
    for _ in range(2):  # engines keep heartbeating while their partitions change hands
        workers.start(**{**FAST, "ENGINE_LOST_S": "15"})
    workers.wait_settled()
    h = harness
    h.finish_delay_s[first] = 12.0
    h.start_run(first, "c-a", duration_s=1)
    h.start_run(second, "c-b", duration_s=12)
    wait_until("the first stop", lambda: bool(h.decisions.stops_of(first)), 60, workers.logs)
    (owner,) = [w for w in workers.started if w.metrics().get("shibuya_runs_tracked") == 2.0]
    owner.kill()

    wait_until("both runs to end", lambda: bool(h.decisions.ended_of(first))
               and bool(h.decisions.ended_of(second)), 120, workers.logs)  # fmt: skip
    for run_id in (first, second):
        assert len(h.decisions.stops_of(run_id)) == 1, run_id
        (ended,) = h.decisions.ended_of(run_id)
        assert ended.outcome == "finished", (h.decisions.status(run_id), workers.logs())
    assert h.decisions.stops_of(second)[0].reason == "duration reached"


def test_an_idle_collection_is_purged_once_and_a_busy_one_never(
    workers: Workers, harness: Harness
) -> None:
    for _ in range(2):
        workers.start(**FAST)
    workers.wait_settled()
    h = harness
    h.deploy("idle")
    h.deploy("busy")
    h.set_engines("busy-", state=EngineState.RUNNING, run_id="r-busy")
    wait_until("the idle collection's purge", lambda: bool(h.decisions.purges_of("idle")), 60,
               workers.logs)  # fmt: skip
    (purge,) = h.decisions.purges_of("idle")
    assert purge.reason.startswith("idle for ")
    # Two more GC periods, told by idle canaries deployed one after the other being purged:
    # no second purge of the idle collection, none of the busy one.
    for canary in ("canary-1", "canary-2"):
        h.deploy(canary)
        wait_until(f"{canary}'s purge", _purged(h, canary), 60, workers.logs)
    assert len(h.decisions.purges_of("idle")) == 1
    assert h.decisions.purges_of("busy") == []


def _purged(h: Harness, collection_id: str) -> Callable[[], bool]:
    return lambda: bool(h.decisions.purges_of(collection_id))


def test_a_worker_refuses_topics_read_together_with_different_partition_counts(
    workers: Workers, kafka_bootstrap: str, unique: str
) -> None:
    run_events = topic_name(Topic.RUN_EVENTS, unique)
    asyncio.run(kafka_io.create_topics(kafka_bootstrap, [run_events], partitions=2))
    worker = workers.start()
    wait_until("the worker to exit", worker.exited, 60, workers.logs)
    assert worker.proc.returncode == 2
    assert f"{run_events} has 2, {topic_name(Topic.METRICS, unique)} has 4" in worker.log_tail()
