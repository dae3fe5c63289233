"""The progress of one run, as its owner in the stream tracks it: a pure state machine.

    deploying ─(an engine runs)─► running ─(time up, stop requested, breach)─► stopping
        └──────────────┴───(every engine finished, failed or lost)──────────────┴─►
                                                          finished | aborted | failed

Inputs are the run's events (``RunStarted``, ``RunStopRequested``), engine status messages,
per-second sample counts, criterion breaches and the clock (:meth:`RunProgress.tick`). Outputs are
the state, every transition with its reason, and commands: the owner emits one ``StopEngines``
per run, with an id derived from the run, so a new owner after a rebalance that emits it again is
ignored by the sidecars (they act on a command id once). Nothing here does I/O; the agent that
feeds it (issue 5) persists it in a table keyed by run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from streams.wire import EngineState, EngineStatus, RunOutcome, RunStarted, StopEngines


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


@dataclass
class RunProgress:
    run: RunStarted
    stop_grace_s: int = 30
    """After the duration (plus ramp-up), how long engines get before the run stops them."""
    lost_after_s: int = 30
    """An engine without a heartbeat this long is lost."""
    state: RunState = RunState.DEPLOYING
    transitions: list[Transition] = field(default_factory=list)
    engines: dict[str, Engine] = field(default_factory=dict)
    samples: int = 0
    first_second: int | None = None
    last_second: int | None = None
    aborted_by: str | None = None
    """The criterion (or stop request) that ended the run early."""
    stop_sent: bool = False

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
            "lost": sum(e.lost for e in self.engines.values()),
        }

    # --- inputs -------------------------------------------------------------------------------

    def on_engine(self, status: EngineStatus) -> None:
        if status.run_id != self.run.run_id or self.state.ended:
            return
        engine = self.engines.get(status.engine_id)
        if engine is None:
            engine = self.engines[status.engine_id] = Engine(status.state, status.ts_ms)
        engine.state, engine.heard_ms, engine.lost = status.state, status.ts_ms, False
        if self.state is RunState.DEPLOYING and status.state is EngineState.RUNNING:
            self._to(status.ts_ms, RunState.RUNNING, f"engine {status.engine_id} running")
        self._maybe_end(status.ts_ms)

    def on_second(self, second: int, samples: int) -> None:
        if samples:
            self.samples += samples
            self.first_second = second if self.first_second is None else self.first_second
            self.last_second = second

    def on_stop_requested(self, reason: str, at_ms: int) -> list[StopEngines]:
        return self._stop(at_ms, f"stop requested: {reason}", aborted_by=reason)

    def on_breach(self, criterion: str, value: float, at_ms: int) -> list[StopEngines]:
        return self._stop(at_ms, f"criterion breached: {criterion} (value {value:g})", criterion)

    def tick(self, now_ms: int) -> list[StopEngines]:
        """Time passes: stop the run when its time is up, mark silent engines lost."""
        if self.state.ended:
            return []
        for engine_id, e in self.engines.items():
            silent = now_ms - e.heard_ms >= self.lost_after_s * 1000
            if silent and not e.lost and e.state not in (EngineState.FINISHED, EngineState.FAILED):
                e.lost = True
                self.transitions.append(Transition(now_ms, self.state, f"engine {engine_id} lost"))
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

    def _maybe_end(self, at_ms: int) -> None:
        if self.state.ended or len(self.engines) < self.expected:
            return
        done = [
            e for e in self.engines.values()
            if e.lost or e.state in (EngineState.FINISHED, EngineState.FAILED)
        ]  # fmt: skip
        if len(done) < len(self.engines):
            return
        n = self.counts()
        if n["finished"] == 0:
            why = "every engine lost" if n["lost"] == len(self.engines) else "no engine finished"
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
