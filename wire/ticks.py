"""When the stages of the pipeline act: at fixed phases of the wall clock, the clock of the
samples' seconds (docs/stream.md §1, Phases).

The sidecars send a batch that is not full at their send tick; the worker's agents flush at
phases after it, each a little after the stage whose output it reads. Both sides take their
ticks from :func:`until_tick`, so they agree wherever they run (hosts' clocks in sync, as the
samples' seconds already need).
"""

from __future__ import annotations

from typing import Final

#: The sidecars' send tick, as a fraction of their ``max_interval_ms`` past each multiple of it:
#: 150 ms after each second and half-second by default. Every sidecar's samples of a second's
#: first 150 ms (those done by then) leave at once.
SEND_PHASE: Final = 0.3


def until_tick(now_s: float, interval_s: float, phase: float) -> float:
    """Seconds from ``now_s`` to the next tick at ``phase`` × ``interval_s`` past a multiple of
    ``interval_s`` (a whole interval when one is due right now)."""
    return interval_s - (now_s - phase * interval_s) % interval_s
