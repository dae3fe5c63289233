"""The send ticks of the sidecars and the flush timers of the worker's agents: at fixed phases of
the wall clock, each stage after the one whose output it reads."""

from __future__ import annotations

import itertools

import pytest

from streams.agents.aggregate import Aggregate
from streams.agents.merge import Merge
from streams.agents.runs import Runs
from wire.ticks import SEND_PHASE, until_tick


def next_tick(now_s: float, interval_s: float) -> float:
    """When a sidecar whose interval is ``interval_s`` next sends, on the wall clock."""
    return now_s + until_tick(now_s, interval_s, SEND_PHASE)


def test_a_sidecar_sends_at_its_tick_past_each_multiple_of_its_interval() -> None:
    assert next_tick(100.0, 0.5) == pytest.approx(100.0 + SEND_PHASE * 0.5)
    assert next_tick(100.0 + SEND_PHASE * 0.5, 0.5) == pytest.approx(100.5 + SEND_PHASE * 0.5)
    assert next_tick(100.4, 0.5) == pytest.approx(100.5 + SEND_PHASE * 0.5)


def test_a_tick_falls_at_its_phase_past_each_multiple_of_the_interval() -> None:
    assert until_tick(100.0, 0.5, 0.4) == pytest.approx(0.2)  # at 100.2, 100.7, …
    assert until_tick(100.3, 0.5, 0.4) == pytest.approx(0.4)
    assert until_tick(100.2, 0.5, 0.4) == pytest.approx(0.5)  # due now: the next one
    assert until_tick(7.9, 2.0, 0.0) == pytest.approx(0.1)  # at every even second


def test_each_stage_flushes_after_the_stage_it_reads() -> None:
    """The sidecars send at their tick; the aggregate agents flush a while after it, the merge
    agents after them, the runs agents after those (in the next interval: the phases wrap)."""
    stages = [SEND_PHASE, Aggregate.flush_phase, Merge.flush_phase, Runs.flush_phase]
    gaps = [(b - a) % 1 for a, b in itertools.pairwise(stages)]
    assert all(0.2 <= gap <= 0.5 for gap in gaps), gaps
    assert sum(gaps) < 1  # all within one interval of the sidecars' tick
