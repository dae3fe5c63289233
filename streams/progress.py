"""The progress of one run, as its owner in the stream tracks it: a pure state machine.

    deploying ─(an engine runs)─► running ─(time up, stop requested, breach)─► stopping
        └──────────────┴───(every engine finished, failed or lost)──────────────┴─►
                                                          finished | aborted | failed

Inputs are the run's events (``RunStarted``, ``RunStopRequested``), engine status messages,
per-second sample counts, criterion breaches and the clock (:meth:`RunProgress.tick`). Outputs are
the state, every transition with its reason, and commands: the owner emits one ``StopEngines``
per run, with an id derived from the run, so a new owner after a rebalance that emits it again is
ignored by the sidecars (they act on a command id once). A run stopping longer than
``stop_timeout_s`` ends anyway, its unfinished (or never heard) engines counted lost, so every run
ends. Nothing here does I/O; :mod:`streams.agents.runs` feeds it and persists it (it is a plain
dataclass that msgspec encodes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from wire import (
    CriterionResult,
    EngineCounts,
    EngineState,
    EngineStatus,
    RunOutcome,
    RunStarted,
    RunStatus,
    StopEngines,
    TransitionInfo,
)


class RunState(StrEnum):
    DEPLOYING = "deploying"
    RUNNING = "running"
    STOPPING = "stopping"
    FINISHED = "finished"
    ABORTED = "aborted"
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        return self in (RunState.FINISHED, RunState.ABORTED, RunState.FAILED)


@dataclass(frozen=True)
class Transition:
    at_ms: int
    to: RunState
    reason: str


@dataclass
class Engine:
    state: EngineState
    heard_ms: int
    lost: bool = False
    published: int = 0
    """Samples the engine's sidecar has published (its latest heartbeat says)."""
    unpublished_bytes: int = 0
    """Results it wrote that Kafka had not taken yet (its latest heartbeat says)."""


@dataclass
class RunProgress:
    run: RunStarted
    stop_grace_s: int = 30
    """After the duration (plus ramp-up), how long engines get before the run stops them."""
    lost_after_s: int = 30
    """An engine without a heartbeat this long is lost."""
    stop_timeout_s: int = 120
    """A run stopping this long ends: its engines not done by then are lost."""
    state: RunState = RunState.DEPLOYING
    transitions: list[Transition] = field(default_factory=list)
    engines: dict[str, Engine] = field(default_factory=dict)
    samples: int = 0
    failures: int = 0
    first_second: int | None = None
    last_second: int | None = None
    aborted_by: str | None = None
    """The criterion (or stop request) that ended the run early."""
    stop_sent: bool = False
    stopping_ms: int | None = None
    missing: int = 0
    """Expected engines never heard of by the time the run had to end (counted lost)."""

    def __post_init__(self) -> None:
        if not self.transitions:
            self.transitions.append(Transition(self.run.started_ms, self.state, "run started"))

    @property
    def expected(self) -> int:
        return sum(p.engines for p in self.run.plans)

    @property
    def stop_command_id(self) -> str:
        return f"{self.run.run_id}.stop"

    @property
    def deadline_ms(self) -> int:
        """When the run's time is up: start + ramp-up + duration of its longest plan."""
        longest = max(p.ramp_up_s + p.duration_s for p in self.run.plans)
        return self.run.started_ms + longest * 1000

    def counts(self) -> dict[str, int]:
        """Engines expected, started, finished, failed and lost."""
        started = {EngineState.RUNNING, EngineState.STOPPING, EngineState.FINISHED}
        return {
            "expected": self.expected,
            "started": sum(e.state in started for e in self.engines.values()),
            "finished": sum(e.state is EngineState.FINISHED for e in self.engines.values()),
            "failed": sum(e.state is EngineState.FAILED for e in self.engines.values()),
            "lost": sum(e.lost for e in self.engines.values()) + self.missing,
        }

    @property
    def published(self) -> int:
        """Samples the engines say they published: the run's metrics are complete at this."""
        return sum(e.published for e in self.engines.values())

    @property
    def ended_ms(self) -> int | None:
        return self.transitions[-1].at_ms if self.state.ended else None

    # --- inputs -------------------------------------------------------------------------------

    def on_engine(self, status: EngineStatus) -> None:
        if status.run_id != self.run.run_id or self.state.ended:
            return
        engine = self.engines.get(status.engine_id)
        if engine is None:
            engine = self.engines[status.engine_id] = Engine(status.state, status.ts_ms)
        engine.state, engine.lost = status.state, False
        engine.heard_ms = max(engine.heard_ms, status.ts_ms)
        engine.published = max(engine.published, status.samples_published)
        engine.unpublished_bytes = status.unpublished_bytes
        if self.state is RunState.DEPLOYING and status.state is EngineState.RUNNING:
            self._to(status.ts_ms, RunState.RUNNING, f"engine {status.engine_id} running")
        self._maybe_end(status.ts_ms)

    def resume(self, now_ms: int) -> None:
        """A new owner took the run over: the silence while nobody listened proves nothing, so
        engines get ``lost_after_s`` from now."""
        for e in self.engines.values():
            e.heard_ms = max(e.heard_ms, now_ms)

    def stalled(self, gap_ms: int, now_ms: int) -> None:
        """The owner could not listen for ``gap_ms`` (Kafka away, the worker paused): the
        engines' silence meanwhile is not theirs — a broker outage stops their heartbeats too —
        and a stop's timeout does not run while nobody could hear them finish."""
        self.resume(now_ms)
        if self.stopping_ms is not None:
            self.stopping_ms += gap_ms

    def on_second(self, second: int, samples: int, failures: int = 0) -> None:
        if samples:
            self.samples += samples
            self.failures += failures
            self.first_second = min(second, self.first_second or second)
            self.last_second = max(second, self.last_second or second)

    def on_stop_requested(self, reason: str, at_ms: int) -> list[StopEngines]:
        return self._stop(at_ms, f"stop requested: {reason}", aborted_by=reason)

    def on_breach(self, criterion: str, value: float, at_ms: int) -> list[StopEngines]:
        return self._stop(at_ms, f"criterion breached: {criterion} (value {value:g})", criterion)

    def tick(self, now_ms: int, heard_until_ms: int | None = None) -> list[StopEngines]:
        """Time passes: stop the run when its time is up, mark silent engines lost — silent up
        to ``heard_until_ms`` (default now): when the owner last could hear them."""
        if self.state.ended:
            return []
        if self.state is RunState.STOPPING and self._stop_timed_out(now_ms):
            self._give_up(now_ms)
        until_ms = now_ms if heard_until_ms is None else min(now_ms, heard_until_ms)
        for engine_id, e in self.engines.items():
            silent = until_ms - e.heard_ms >= self.lost_after_s * 1000
            if silent and not e.lost and e.state not in (EngineState.FINISHED, EngineState.FAILED):
                e.lost = True
                behind = (f" with {e.unpublished_bytes:,} bytes of results unpublished"
                          if e.unpublished_bytes else "")  # fmt: skip
                self.transitions.append(
                    Transition(now_ms, self.state, f"engine {engine_id} lost{behind}")
                )
        commands: list[StopEngines] = []
        if now_ms >= self.deadline_ms + self.stop_grace_s * 1000:
            commands = self._stop(now_ms, "duration reached", None)
        self._maybe_end(now_ms)
        return commands

    # --- transitions --------------------------------------------------------------------------

    def _stop(self, at_ms: int, reason: str, aborted_by: str | None) -> list[StopEngines]:
        if self.state.ended or self.state is RunState.STOPPING:
            return []
        self.aborted_by = aborted_by
        self.stopping_ms = at_ms
        self._to(at_ms, RunState.STOPPING, reason)
        if self.stop_sent:
            return []
        self.stop_sent = True
        return [
            StopEngines(
                command_id=self.stop_command_id,
                collection_id=self.run.collection_id,
                run_id=self.run.run_id,
                reason=reason,
                issued_ms=at_ms,
            )
        ]

    def _stop_timed_out(self, now_ms: int) -> bool:
        return (
            self.stopping_ms is not None and now_ms - self.stopping_ms >= self.stop_timeout_s * 1000
        )

    def _give_up(self, now_ms: int) -> None:
        """Stopping took too long: engines not done are lost, engines never heard are missing."""
        for engine_id, e in self.engines.items():
            if not e.lost and e.state not in (EngineState.FINISHED, EngineState.FAILED):
                e.lost = True
                self.transitions.append(
                    Transition(now_ms, self.state, f"engine {engine_id} did not stop")
                )
        self.missing = max(0, self.expected - len(self.engines))
        if self.missing:
            self.transitions.append(
                Transition(now_ms, self.state, f"{self.missing} engines never reported")
            )

    def _maybe_end(self, at_ms: int) -> None:
        if self.state.ended or len(self.engines) + self.missing < self.expected:
            return
        done = [
            e for e in self.engines.values()
            if e.lost or e.state in (EngineState.FINISHED, EngineState.FAILED)
        ]  # fmt: skip
        if len(done) < len(self.engines):
            return
        n = self.counts()
        if n["finished"] == 0:
            why = "every engine lost" if n["lost"] == n["expected"] else "no engine finished"
            self._to(at_ms, RunState.FAILED, why)
        elif self.aborted_by is not None:
            self._to(at_ms, RunState.ABORTED, f"ended early: {self.aborted_by}")
        else:
            self._to(
                at_ms, RunState.FINISHED, f"{n['finished']} of {n['expected']} engines finished"
            )

    def _to(self, at_ms: int, state: RunState, reason: str) -> None:
        self.state = state
        self.transitions.append(Transition(at_ms, state, reason))

    @property
    def outcome(self) -> RunOutcome | None:
        return RunOutcome(self.state.value) if self.state.ended else None

    @property
    def samples_missing(self) -> int:
        """Samples the engines published that the run has not counted (0 while it goes on)."""
        return max(0, self.published - self.samples) if self.state.ended else 0

    def status(self, now_ms: int, criteria: list[CriterionResult]) -> RunStatus:
        """The operator view of the run (see :class:`wire.RunStatus`)."""
        return RunStatus(
            run_id=self.run.run_id,
            collection_id=self.run.collection_id,
            project_id=self.run.project_id,
            state=self.state.value,
            updated_ms=now_ms,
            started_ms=self.run.started_ms,
            ended_ms=self.ended_ms,
            engines=EngineCounts(**self.counts()),
            samples=self.samples,
            failures=self.failures,
            first_second_s=self.first_second,
            last_second_s=self.last_second,
            criteria=criteria,
            transitions=[
                TransitionInfo(at_ms=t.at_ms, state=t.to, reason=t.reason) for t in self.transitions
            ],
            reason=self.transitions[-1].reason
            + (
                f"; {self.samples_missing:,} samples the engines published were not counted"
                if self.samples_missing
                else ""
            ),
            samples_missing=self.samples_missing,
        )
