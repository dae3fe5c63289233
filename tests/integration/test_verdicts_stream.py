"""Verdicts decided by a real worker on a real broker, for the runs a CI gate must not pass by
default: one stopped long before its windows filled (judged on the seconds it had, and saying
so), one with an engine that fell silent (judged on the other's samples), and one whose
breach fails it at the end without stopping it. Engines are heartbeats (tests/support/lifecycle.py)
and generated result batches with known contents."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.lifecycle import Harness, now_ms
from tests.support.stream import Workers, generate, send
from tests.support.waiting import wait_until
from wire import EngineState, RunStatus, RunStopRequested, Topic, encode_message, run_key

pytestmark = pytest.mark.integration

FAST = {"STOP_GRACE_S": "1", "ENGINE_LOST_S": "3", "STOP_TIMEOUT_S": "30", "RUN_SETTLE_S": "20"}


@pytest.fixture
def harness(kafka_bootstrap: str, unique: str) -> Iterator[Harness]:
    h = Harness(kafka_bootstrap, unique)
    yield h
    h.close()


def _final(h: Harness, workers: Workers, run_id: str) -> RunStatus:
    wait_until(f"{run_id} to end", lambda: bool(h.decisions.ended_of(run_id)), 90, workers.logs)
    (final,) = [s for s in h.decisions.ended_statuses if s.run_id == run_id]
    return final


def test_verdicts_of_a_stopped_run_a_silent_engine_and_a_breach_without_abort(
    workers: Workers, harness: Harness, unique: str, kafka_bootstrap: str
) -> None:
    workers.start(**FAST)
    workers.wait_settled()
    h = harness
    runs = {name: f"{name}-{unique}" for name in ("stopped", "silent", "goes-on")}
    stopped = ("error_rate > 1% over 60s", "p95(elapsed) > 1ms for 30s", "rps < 100000 over run")
    h.start_run(runs["stopped"], "c-stopped", duration_s=600, thresholds=stopped)
    h.start_run(runs["silent"], "c-silent", duration_s=600,
                thresholds=("error_rate > 50% over run",))  # fmt: skip
    h.start_run(runs["goes-on"], "c-goes-on", duration_s=600,
                thresholds=("failures > 0 for 2s", "error_rate > 50% over run"))  # fmt: skip
    wait_until("the silent run's engines to be heard", lambda: (
        (s := h.decisions.status(runs["silent"])) is not None and s.engines.started == 2
    ), 60, workers.logs)  # fmt: skip
    h.set_engines("c-silent-e1", beating=False)  # silent from now on: lost
    generated = {}
    for name, engines in (("stopped", 2), ("silent", 1), ("goes-on", 2)):
        gen = generate(runs[name], engines=engines, seconds=8, start_s=int(time.time()) - 2)
        generated[name] = gen.expected.total
        h.set_engines(f"c-{name}-e0", published=gen.expected.total)
        send(kafka_bootstrap, h.topics[Topic.RESULTS], gen.messages)
    wait_until("every sample counted", lambda: all(
        (s := h.decisions.status(r)) is not None and s.samples == generated[n]
        for n, r in runs.items()), 60, workers.logs)  # fmt: skip
    assert h.decisions.stops_of(runs["goes-on"]) == []  # its breach stopped nothing
    stop = RunStopRequested(run_id=runs["stopped"], requested_ms=now_ms(), reason="enough")
    h.send(h.topics[Topic.RUN_EVENTS], run_key(runs["stopped"]), encode_message(stop))
    h.set_engines("c-silent-e0", state=EngineState.FINISHED)
    h.set_engines("c-goes-on-", state=EngineState.FINISHED)

    final = _final(h, workers, runs["stopped"])
    assert final.state == "aborted"
    verdicts = {c.criterion: c for c in final.criteria}
    # Every one breached, on the seconds the run had — and on the same samples: all of them but
    # those that came after their second closed, which count in the run but in no verdict (a
    # source seen late on a loaded machine).
    judged = {verdicts[text].samples for text in stopped}
    assert len(judged) == 1
    assert 0.8 * generated["stopped"] <= judged.pop() <= generated["stopped"]
    for text in stopped:
        v = verdicts[text]
        assert (v.passed, v.error) == (False, ""), v
    seconds = verdicts["rps < 100000 over run"].seconds
    assert 8 <= seconds <= 9  # the generated seconds (a lagging engine's may add one)
    assert verdicts["error_rate > 1% over 60s"].note == (
        f"the run gave {seconds} s of the 60 s window: judged on those"
    )
    assert verdicts["p95(elapsed) > 1ms for 30s"].note == (
        f"the run gave {seconds} s of the 30 s window: judged on those"
    )

    silent = _final(h, workers, runs["silent"])
    assert (silent.state, silent.engines.lost, silent.engines.finished) == ("finished", 1, 1)
    (only,) = silent.criteria
    assert only.passed is True
    assert 0.8 * generated["silent"] <= only.samples <= generated["silent"]  # the other's
    assert only.value is not None
    assert 0 < only.value < 0.5

    goes_on = _final(h, workers, runs["goes-on"])
    assert goes_on.state == "finished"  # not aborted: a breach without `abort` fails at the end
    verdicts = {c.criterion: c for c in goes_on.criteria}
    assert verdicts["failures > 0 for 2s"].passed is False
    assert verdicts["failures > 0 for 2s"].breach_second_s is not None
    assert verdicts["error_rate > 50% over run"].passed is True
