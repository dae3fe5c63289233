"""Evaluate a run's pass/fail criteria on its final per-second rows: the pure core.

Fed the rows of each closed second in order (run totals, and label rows for criteria on a
label), :class:`RunCriteria` keeps a window per criterion and reports the first breach of each —
with the second it completed and the value that breached — and at the end a verdict per
criterion. A second without samples has no latency or error rate (it breaks a ``for`` streak of
those) and an rps of 0. The syntax is :mod:`wire.criteria`. :meth:`RunCriteria.dump`
and :meth:`RunCriteria.load` carry the windows over to the run's next owner.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from streams import histogram
from wire import CriterionResult, SecondMetrics
from wire.criteria import QUANTILES, Criterion, CriterionError, Window, parse


@dataclass(frozen=True)
class Breach:
    criterion: str
    second: int
    """The second whose close completed the breach."""
    value: float


@dataclass
class _Second:
    second: int
    count: int = 0
    failures: int = 0
    elapsed_sum: int = 0
    elapsed_max: int = 0
    buckets: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)


@dataclass
class _State:
    criterion: Criterion
    window: deque[_Second] = field(default_factory=deque)
    streak: int = 0
    breach: Breach | None = None


@dataclass
class CriterionSnapshot:
    text: str
    window: list[_Second]
    streak: int
    breach: Breach | None


@dataclass
class CriteriaSnapshot:
    """What a new owner needs to go on evaluating a run's criteria (msgspec encodes it)."""

    ramp_up_end_s: int
    next_s: int | None
    states: list[CriterionSnapshot]
    errors: dict[str, str] = field(default_factory=dict)


class RunCriteria:
    def __init__(
        self,
        criteria: Iterable[Criterion],
        ramp_up_end_s: int = 0,
        errors: dict[str, str] | None = None,
    ) -> None:
        self._states = [_State(c) for c in criteria]
        self.ramp_up_end_s = ramp_up_end_s
        self._next_s: int | None = None
        self.errors = dict(errors or {})
        """Criterion text → why it cannot be evaluated (such a criterion fails)."""

    @classmethod
    def of_texts(cls, texts: Iterable[str], ramp_up_end_s: int = 0) -> RunCriteria:
        """Parse the criteria; the invalid ones are kept as errors, the others evaluated."""
        valid, errors = [], {}
        for text in texts:
            try:
                valid.append(parse(text))
            except CriterionError as exc:
                errors[text] = str(exc)
        return cls(valid, ramp_up_end_s, errors)

    def dump(self) -> CriteriaSnapshot:
        return CriteriaSnapshot(
            self.ramp_up_end_s,
            self._next_s,
            [
                CriterionSnapshot(s.criterion.text, list(s.window), s.streak, s.breach)
                for s in self._states
            ],
            dict(self.errors),
        )

    @classmethod
    def load(cls, snap: CriteriaSnapshot) -> RunCriteria:
        out = cls([parse(s.text) for s in snap.states], snap.ramp_up_end_s, snap.errors)
        out._next_s = snap.next_s
        for state, saved in zip(out._states, snap.states, strict=True):
            state.window.extend(saved.window)
            state.streak, state.breach = saved.streak, saved.breach
        return out

    def wants(self, row: SecondMetrics) -> bool:
        """Whether any criterion reads the row: run totals, and the rows of labels named."""
        if row.plan_id is None and row.label is None:
            return True
        return any(s.criterion.label == row.label for s in self._states)

    def results(self, final: bool) -> list[CriterionResult]:
        """Per criterion: failed if breached (or invalid), passed if not breached by the end,
        undecided (``passed=None``) before."""
        out = [CriterionResult(criterion=t, passed=False, error=e) for t, e in self.errors.items()]
        for s in self._states:
            b = s.breach
            out.append(
                CriterionResult(criterion=s.criterion.text, passed=True if final else None)
                if b is None
                else CriterionResult(
                    criterion=b.criterion, passed=False, breach_second_s=b.second, value=b.value
                )
            )
        return out

    def observe(self, second: int, rows: Iterable[SecondMetrics]) -> list[Breach]:
        """Feed the rows of one closed second (seconds in increasing order, gaps allowed);
        return the criteria newly breached."""
        rows = list(rows)
        seconds = [second] if self._next_s is None else range(self._next_s, second + 1)
        self._next_s = second + 1
        out: list[Breach] = []
        for s in seconds:  # a gap is seconds without samples
            for state in self._states:
                if state.breach is None:
                    sec = _select(state.criterion, s, rows if s == second else [])
                    state.breach = self._step(state, sec)
                    if state.breach is not None:
                        out.append(state.breach)
        return out

    def breaches(self) -> list[Breach]:
        return [s.breach for s in self._states if s.breach is not None]

    def verdicts(self) -> dict[str, bool]:
        """Criterion text → passed."""
        return {
            **{text: False for text in self.errors},
            **{s.criterion.text: s.breach is None for s in self._states},
        }

    def _step(self, state: _State, sec: _Second) -> Breach | None:
        c = state.criterion
        if c.after_ramp_up and sec.second < self.ramp_up_end_s:
            return None
        if c.window is Window.FOR:
            value = _value(c, [sec], 1)
            state.streak = state.streak + 1 if value is not None and c.holds(value) else 0
            if state.streak >= c.seconds and value is not None:
                return Breach(c.text, sec.second, value)
            return None
        state.window.append(sec)
        while state.window and state.window[0].second <= sec.second - c.seconds:
            state.window.popleft()
        if sec.second - state.window[0].second + 1 < c.seconds:
            return None  # not a whole window yet
        value = _value(c, list(state.window), c.seconds)
        if value is not None and c.holds(value):
            return Breach(c.text, sec.second, value)
        return None


def _select(c: Criterion, second: int, rows: list[SecondMetrics]) -> _Second:
    out = _Second(second)
    for r in rows:
        if (r.label == c.label) if c.label is not None else (r.plan_id is None and r.label is None):
            out.count += r.count
            out.failures += r.failures
            out.elapsed_sum += r.elapsed_sum_ms
            out.elapsed_max = max(out.elapsed_max, r.elapsed_max_ms)
            h = getattr(r, c.field) if c.field else r.elapsed
            out.buckets.extend(h.buckets)
            out.counts.extend(h.counts)
    return out


def _value(c: Criterion, seconds: list[_Second], span: int) -> float | None:
    count = sum(s.count for s in seconds)
    if c.measure == "rps":
        return count / span
    if c.measure == "failures":
        return float(sum(s.failures for s in seconds))
    if count == 0:
        return None
    if c.measure == "error_rate":
        return sum(s.failures for s in seconds) / count
    if c.field == "elapsed" and c.measure == "avg":
        return sum(s.elapsed_sum for s in seconds) / count
    if c.field == "elapsed" and c.measure == "max":
        return float(max(s.elapsed_max for s in seconds))
    buckets = np.fromiter((b for s in seconds for b in s.buckets), np.int64)
    counts = np.fromiter((n for s in seconds for n in s.counts), np.int64)
    if c.measure == "avg":
        return float((histogram.representative(buckets) * counts).sum() / counts.sum())
    if c.measure == "max":
        return float(histogram.representative(buckets.max()))
    q = QUANTILES[c.measure]
    merged = histogram.merge((buckets, counts))
    return float(histogram.quantiles(merged, [q])[0])
