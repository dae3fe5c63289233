"""Evaluate a run's pass/fail criteria on its final per-second rows: the pure core.

Fed the rows of each closed second in order (run totals, and label rows for criteria on a
label), :class:`RunCriteria` keeps a window per criterion and reports the first breach of each —
with the second it completed, the value that breached, the seconds and samples it rests on, and
whether it aborts the run. At the end, :meth:`RunCriteria.results` judges what only the end can:
``over run`` criteria, and windows longer than what ran (judged over the seconds there were, and
said so). No criterion passes without having been evaluated: one that judged no second, or (for
latency and error measures) saw no sample, fails as *not evaluated*. A second without samples
has no latency or error rate (it breaks a ``for`` streak of those) and an rps of 0. The syntax
is :mod:`wire.criteria`. :meth:`RunCriteria.dump` and :meth:`RunCriteria.load` carry the windows
over to the run's next owner.
"""

from __future__ import annotations

import bisect
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
    seconds: int = 0
    """Seconds the breaching value rests on."""
    samples: int = 0
    abort: bool = False
    """The criterion stops the run at its breach."""
    note: str = ""


@dataclass
class _Second:
    second: int
    count: int = 0
    failures: int = 0
    elapsed_sum: int = 0
    elapsed_max: int = 0
    elapsed_min: int | None = None
    buckets: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)


@dataclass
class Tally:
    """What a criterion has judged so far."""

    evaluated: int = 0
    """Seconds judged (gaps included; before the ramp-up's end not, if ``after ramp-up``)."""
    samples: int = 0
    last_s: int | None = None
    worst: float | None = None
    """The value nearest to breaching among the windows judged."""
    longest: int = 0
    """``for``: the longest streak of breaching seconds."""
    streak_samples: int = 0


@dataclass
class _State:
    criterion: Criterion
    window: deque[_Second] = field(default_factory=deque)
    """``over D``: the last D seconds; ``over run``: one merged second, the run so far."""
    streak: int = 0
    breach: Breach | None = None
    tally: Tally = field(default_factory=Tally)


@dataclass
class CriterionSnapshot:
    text: str
    window: list[_Second]
    streak: int
    breach: Breach | None
    tally: Tally = field(default_factory=Tally)


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
                CriterionSnapshot(s.criterion.text, list(s.window), s.streak, s.breach, s.tally)
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
            state.streak, state.breach, state.tally = saved.streak, saved.breach, saved.tally
        return out

    def wants(self, row: SecondMetrics) -> bool:
        """Whether any criterion reads the row: run totals, and the rows of labels named."""
        if row.plan_id is None and row.label is None:
            return True
        return any(s.criterion.label == row.label for s in self._states)

    def results(self, final: bool) -> list[CriterionResult]:
        """Per criterion: failed if breached (or invalid, or — at the end — not evaluated),
        passed if not breached by the end, undecided (``passed=None``) before."""
        out = [CriterionResult(criterion=t, passed=False, error=e) for t, e in self.errors.items()]
        for s in self._states:
            c = s.criterion
            if s.breach is not None:
                out.append(_failed(c, s.breach))
            elif final:
                out.append(_judged(s))
            else:
                out.append(CriterionResult(criterion=c.text, passed=None, threshold=c.threshold,
                                           seconds=s.tally.evaluated, samples=s.tally.samples,
                                           value=s.tally.worst))  # fmt: skip
        return out

    def observe(self, second: int, rows: Iterable[SecondMetrics]) -> list[Breach]:
        """Feed the rows of one closed second (seconds in increasing order, gaps allowed; a
        second before one fed already is ignored); return the criteria newly breached."""
        if self._next_s is not None and second < self._next_s:
            return []
        rows = list(rows)
        gap_from = second if self._next_s is None else self._next_s
        self._next_s = second + 1
        out: list[Breach] = []
        for state in self._states:
            if state.breach is None:  # a gap is seconds without samples
                state.breach = self._gap(state, gap_from, second) or self._step(
                    state, _select(state.criterion, second, rows)
                )
                if state.breach is not None:
                    out.append(state.breach)
        return sorted(out, key=lambda b: b.second)

    def _gap(self, state: _State, start: int, end: int) -> Breach | None:
        """Judge the seconds ``start`` to ``end - 1``, which had no samples.

        A few empty seconds past its window, a criterion is steady: another empty second only
        adds to the seconds judged (and, over the run, lowers its rps). So a long gap — a clock
        off by a year is enough — is stepped at its edges and counted in its middle."""
        c, t = state.criterion, state.tally
        if c.after_ramp_up:
            start = max(start, self.ramp_up_end_s)
        edge = (1 if c.whole_run else c.seconds) + 2
        middle = range(start + edge, end - edge)
        if breach := self._empty(state, range(start, min(end, middle.start))):
            return breach
        if middle:
            if c.whole_run and c.abort:  # its rps falls as the run lengthens: when does it hold?
                total, judged = state.window[0], t.evaluated
                spans = range(judged + 1, judged + len(middle) + 1)
                at = bisect.bisect_left(spans, True, key=lambda e: _holds(c, [total], e))
                if at < len(spans):
                    t.evaluated, t.last_s = spans[at], middle[at]
                    total.second = middle[at]
                    value = _value(c, [total], spans[at])
                    assert value is not None
                    return Breach(c.text, middle[at], value, spans[at], t.samples, c.abort)
            t.evaluated += len(middle)
            t.last_s = middle[-1]
            if c.whole_run:
                state.window[0].second = middle[-1]
        return self._empty(state, range(max(start, middle.start, end - edge), end))

    def _empty(self, state: _State, seconds: range) -> Breach | None:
        """Step ``seconds`` without samples; the breach, if one completes."""
        for s in seconds:
            if breach := self._step(state, _Second(s)):
                return breach
        return None

    def verdicts(self) -> dict[str, bool]:
        """Criterion text → passed, as at the end."""
        return {r.criterion: r.passed is True for r in self.results(final=True)}

    def _step(self, state: _State, sec: _Second) -> Breach | None:
        c, t = state.criterion, state.tally
        if c.after_ramp_up and sec.second < self.ramp_up_end_s:
            return None
        t.evaluated, t.samples, t.last_s = t.evaluated + 1, t.samples + sec.count, sec.second
        if c.whole_run:
            total = _merged([*state.window, sec])
            state.window = deque([total])
            if not c.abort:
                return None  # judged at the end, on the whole run
            value = _value(c, [total], t.evaluated)
            if value is not None and c.holds(value):
                return Breach(c.text, sec.second, value, t.evaluated, t.samples, c.abort)
            return None
        if c.window is Window.FOR:
            value = _value(c, [sec], 1)
            t.worst = _worse(c, t.worst, value)
            if value is not None and c.holds(value):
                state.streak, t.streak_samples = state.streak + 1, t.streak_samples + sec.count
            else:
                state.streak, t.streak_samples = 0, 0
            t.longest = max(t.longest, state.streak)
            if state.streak >= c.seconds and value is not None:
                return Breach(c.text, sec.second, value, c.seconds, t.streak_samples, c.abort)
            return None
        state.window.append(sec)
        while state.window and state.window[0].second <= sec.second - c.seconds:
            state.window.popleft()
        if sec.second - state.window[0].second + 1 < c.seconds:
            return None  # not a whole window yet
        value = _value(c, list(state.window), c.seconds)
        t.worst = _worse(c, t.worst, value)
        if value is not None and c.holds(value):
            samples = sum(s.count for s in state.window)
            return Breach(c.text, sec.second, value, c.seconds, samples, c.abort)
        return None


def _failed(c: Criterion, b: Breach) -> CriterionResult:
    return CriterionResult(criterion=c.text, passed=False, breach_second_s=b.second, value=b.value,
                           threshold=c.threshold, seconds=b.seconds, samples=b.samples,
                           note=b.note)  # fmt: skip


def _judged(s: _State) -> CriterionResult:
    """The verdict at the run's end of a criterion not breached during it."""
    c, t = s.criterion, s.tally
    if t.evaluated == 0 or t.last_s is None:
        why = " (the run ended before its ramp-up did)" if c.after_ramp_up else ""
        return _not_evaluated(c, t, f"not evaluated: no second of the run was judged{why}")
    note, value = "", t.worst
    short = not c.whole_run and t.evaluated < c.seconds
    if short:
        note = f"the run gave {t.evaluated} s of the {c.seconds} s window: judged on those"
    if c.whole_run or (short and c.window is Window.OVER):
        value = _value(c, list(s.window), t.evaluated)
        if value is not None and c.holds(value):
            return _failed(c, Breach(c.text, t.last_s, value, t.evaluated, t.samples, note=note))
    elif short and s.streak == t.evaluated and value is not None:  # every second held
        return _failed(c, Breach(c.text, t.last_s, value, t.evaluated, t.samples, note=note))
    if value is None:
        on = f' on "{c.label}"' if c.label is not None else ""
        return _not_evaluated(c, t, f"not evaluated: no samples{on} in {t.evaluated} s")
    if c.window is Window.FOR and t.longest:
        note = "; ".join(filter(None, [note, f"longest breaching streak {t.longest} s"]))
    return CriterionResult(criterion=c.text, passed=True, value=value, threshold=c.threshold,
                           seconds=t.evaluated, samples=t.samples, note=note)  # fmt: skip


def _not_evaluated(c: Criterion, t: Tally, why: str) -> CriterionResult:
    return CriterionResult(criterion=c.text, passed=False, error=why, threshold=c.threshold,
                           seconds=t.evaluated, samples=t.samples)  # fmt: skip


def _worse(c: Criterion, worst: float | None, value: float | None) -> float | None:
    """The one of two values nearer to breaching ``c``."""
    if value is None or worst is None:
        return worst if value is None else value
    return max(worst, value) if c.op in (">", ">=") else min(worst, value)


def _merged(seconds: list[_Second]) -> _Second:
    """Seconds taken together, as one (its histogram merged)."""
    out = _Second(seconds[-1].second)
    for s in seconds:
        out.count += s.count
        out.failures += s.failures
        out.elapsed_sum += s.elapsed_sum
        out.elapsed_max = max(out.elapsed_max, s.elapsed_max)
        out.elapsed_min = _least(out.elapsed_min, s.elapsed_min)
    buckets, counts = histogram.merge(*((s.buckets, s.counts) for s in seconds))
    out.buckets, out.counts = buckets.tolist(), counts.tolist()
    return out


def _least(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _select(c: Criterion, second: int, rows: list[SecondMetrics]) -> _Second:
    out = _Second(second)
    for r in rows:
        if (r.label == c.label) if c.label is not None else (r.plan_id is None and r.label is None):
            out.count += r.count
            out.failures += r.failures
            out.elapsed_sum += r.elapsed_sum_ms
            out.elapsed_max = max(out.elapsed_max, r.elapsed_max_ms)
            out.elapsed_min = _least(out.elapsed_min, r.elapsed_min_ms)
            h = getattr(r, c.field) if c.field else r.elapsed
            out.buckets.extend(h.buckets)
            out.counts.extend(h.counts)
    return out


def _holds(c: Criterion, seconds: list[_Second], span: int) -> bool:
    value = _value(c, seconds, span)
    return value is not None and c.holds(value)


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
    value = float(histogram.quantiles(merged, [q])[0])
    if c.field == "elapsed":  # a bucket's representative may lie past the exact extremes
        least = min((s.elapsed_min for s in seconds if s.elapsed_min is not None), default=None)
        value = min(value, max(s.elapsed_max for s in seconds))
        value = value if least is None else max(value, least)
    return value
