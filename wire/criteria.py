"""Pass/fail criteria of a run: one syntax, parsed and validated here, evaluated by the stream.

    criterion := measure [ "on" LABEL ] OP VALUE window [ "after ramp-up" ] [ "abort" ]
    window    := "for" DURATION | "over" DURATION | "over" "run"
    measure   := QUANTILE "(" FIELD ")" | "avg(" FIELD ")" | "max(" FIELD ")"
               | "error_rate" | "rps" | "failures"
    QUANTILE  := p50 | p75 | p90 | p95 | p99 | p99.9
    FIELD     := elapsed | latency | connect
    OP        := > | >= | < | <=
    VALUE     := a number, with "ms" or "s" for times, "%" for error_rate, none for rps and failures
    DURATION  := a whole number of seconds or minutes: 30s, 2m
    LABEL     := a double-quoted string (JSON escapes)

``for 30s``: the condition holds in each of 30 consecutive seconds. ``over 60s``: it holds for
the 60 seconds taken together (counts added, histograms merged). ``over run``: it holds for the
whole run, judged at its end. Examples::

    p95(elapsed) > 500ms for 30s
    error_rate > 5% over 60s abort
    rps < 100 for 20s after ramp-up
    p99(latency) on "POST /login" >= 2s over 1m
    error_rate > 1% over run

A criterion describes a *breach*: when it holds, the run fails it; with ``abort`` the breach
also stops the run at once (without, the run goes on and fails at its end). Parsing raises
:class:`CriterionError` with the position and what was expected.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Final

import msgspec

from wire.errors import WireError


class CriterionError(WireError):
    """A criterion that does not parse; the message says where and why."""


class Window(StrEnum):
    FOR = "for"
    """Each second of the window breaches."""
    OVER = "over"
    """The window as a whole breaches."""


#: The longest criterion accepted, and the most a run may have: each is evaluated every second.
MAX_CRITERION_CHARS: Final = 500
MAX_CRITERIA: Final = 50
QUANTILES: Final = {"p50": 0.5, "p75": 0.75, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p99.9": 0.999}
FIELDS: Final = ("elapsed", "latency", "connect")
OPS: Final = (">=", "<=", ">", "<")
MAX_WINDOW_S: Final = 3600


class CriterionResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A criterion's verdict, and what it was judged on."""

    criterion: str
    passed: bool | None
    """``None`` while the run goes on and nothing breached yet."""
    breach_second_s: Annotated[int, msgspec.Meta(ge=0)] | None = None
    value: float | None = None
    """The value that breached it; if it passed, the worst value evaluated. In the criterion's
    units: milliseconds, a fraction (error_rate), per second (rps) or a count (failures)."""
    error: str = ""
    """Why the criterion could not be evaluated (it then fails)."""
    threshold: float | None = None
    """In the units of ``value``."""
    seconds: int = 0
    """Seconds evaluated: the breaching window's, or (passed) every second judged."""
    samples: int = 0
    """Samples in those seconds."""
    note: str = ""
    """What the verdict rests on beyond the numbers, e.g. a window longer than the run."""


@dataclass(frozen=True)
class Criterion:
    text: str
    measure: str
    """``p95``, ``avg``, ``max``, ``error_rate``, ``rps`` or ``failures``."""
    field: str | None
    """``elapsed``, ``latency`` or ``connect`` for time measures; else ``None``."""
    label: str | None
    op: str
    threshold: float
    """Milliseconds for times, a fraction (0..1) for error_rate, a count or rate otherwise."""
    window: Window
    seconds: int
    """The window's length; 0 for the whole run (``over run``)."""
    after_ramp_up: bool
    abort: bool = False
    """Stop the run at the breach (else it fails at its end)."""

    @property
    def whole_run(self) -> bool:
        return self.seconds == 0

    @property
    def unit(self) -> str:
        """How its values read: ``ms``, ``%`` (of a fraction), ``/s`` or ```` (a count)."""
        if self.field is not None:
            return "ms"
        return {"error_rate": "%", "rps": "/s"}.get(self.measure, "")

    def holds(self, value: float) -> bool:
        """Whether ``value`` breaches the threshold."""
        t = self.threshold
        return {">": value > t, ">=": value >= t, "<": value < t, "<=": value <= t}[self.op]

    @property
    def kind(self) -> str:
        """The class of what is measured: ``latency``, ``errors`` or ``throughput``."""
        if self.field is not None:
            return "latency"
        return "errors" if self.measure in ("error_rate", "failures") else "throughput"


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<op>>=|<=|>|<)
    | (?P<number>\d+(?:\.\d+)?)(?P<unit>ms|s|m|%)?
    | (?P<word>[A-Za-z_][A-Za-z0-9_.\-]*)
    | (?P<punct>[()])
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    where: str
    kind: str
    """string, op, number, word, ( or )."""
    value: str
    unit: str | None = None


def parse(text: str) -> Criterion:
    """Parse one criterion (see the module doc for the syntax). Linear in its length, which is
    at most :data:`MAX_CRITERION_CHARS`; messages quote it shortened."""
    if len(text) > MAX_CRITERION_CHARS:
        raise CriterionError(f"criterion {_quoted(text)}: longer than {MAX_CRITERION_CHARS} "
                             "characters")  # fmt: skip
    tokens = _tokens(text)
    pos = 0

    def fail(expected: str, at: int | None = None) -> CriterionError:
        i = pos if at is None else at
        where = tokens[i].where if i < len(tokens) else "the end"
        return CriterionError(f"criterion {_quoted(text)}: expected {expected} at {where}")

    def take(kind: str, expected: str) -> _Token:
        nonlocal pos
        if pos >= len(tokens) or tokens[pos].kind != kind:
            raise fail(expected)
        pos += 1
        return tokens[pos - 1]

    measures = "a measure: p50..p99.9(field), avg(field), max(field), error_rate, rps, failures"
    measure, field = take("word", measures).value, None
    if measure in QUANTILES or measure in ("avg", "max"):
        take("(", "'('")
        field = take("word", f"a field: {', '.join(FIELDS)}").value
        if field not in FIELDS:
            raise fail(f"a field: {', '.join(FIELDS)}", pos - 1)
        take(")", "')'")
    elif measure not in ("error_rate", "rps", "failures"):
        raise fail(measures, pos - 1)
    label = None
    if pos < len(tokens) and tokens[pos].value == "on":
        pos += 1
        quoted = take("string", 'a label in double quotes, e.g. "GET /items"')
        try:
            label = json.loads(quoted.value)
        except ValueError as exc:
            raise CriterionError(f"criterion {_quoted(text)}: the label at {quoted.where} is not "
                                 f"a valid quoted string ({exc.args[0]})") from exc  # fmt: skip
    op = take("op", "a comparison: >, >=, <, <=").value
    number = take("number", "a threshold, e.g. 500ms, 5%, 100")
    threshold = _threshold(text, measure, field, float(number.value), number.unit)
    how = take("word", "'for' or 'over' and a duration")
    if how.value not in ("for", "over"):
        raise fail("'for' or 'over' and a duration", pos - 1)
    if how.value == "over" and pos < len(tokens) and tokens[pos].value == "run":
        pos, seconds = pos + 1, 0
    else:
        length = take("number", "a duration, e.g. 30s or 2m" + (", or 'run'" if how.value ==
                                                                "over" else ""))  # fmt: skip
        seconds = _seconds(text, float(length.value), length.unit)
    after = abort = False
    if pos + 1 < len(tokens) and (tokens[pos].value, tokens[pos + 1].value) == ("after", "ramp-up"):
        after, pos = True, pos + 2
    if pos < len(tokens) and tokens[pos].value == "abort":
        abort, pos = True, pos + 1
    if pos < len(tokens):
        raise fail("nothing more (or 'after ramp-up', 'abort')")
    return Criterion(text, measure, field, label, op, threshold, Window(how.value), seconds, after,
                     abort)  # fmt: skip


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    i, end = 0, len(text.rstrip())
    while i < end:
        m = _TOKEN.match(text, i)
        if m is None:
            start = len(text) - len(text[i:].lstrip())
            raise CriterionError(
                f"criterion {_quoted(text)}: unexpected character at {_where(text, start)}"
            )
        start = m.end() - len(m.group(0).lstrip())
        where = _where(text, start)
        if m.group("string"):
            out.append(_Token(where, "string", m.group("string")))
        elif m.group("op"):
            out.append(_Token(where, "op", m.group("op")))
        elif m.group("number"):
            out.append(_Token(where, "number", m.group("number"), m.group("unit")))
        elif m.group("word"):
            out.append(_Token(where, "word", m.group("word")))
        else:
            out.append(_Token(where, m.group("punct"), m.group("punct")))
        i = m.end()
    return out


def _quoted(text: str, limit: int = 80) -> str:
    """The criterion for a message: quoted, shortened."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _where(text: str, i: int) -> str:
    return f"position {i + 1} ({text[i : i + 12]!r})" if i < len(text) else "the end"


def _threshold(text: str, measure: str, field: str | None, value: float, unit: str | None) -> float:
    if field is not None:
        if unit == "ms":
            return value
        if unit == "s":
            return value * 1000
        raise CriterionError(f"criterion {_quoted(text)}: a time threshold needs a unit: ms or s")
    if measure == "error_rate":
        if unit != "%":
            raise CriterionError(f"criterion {_quoted(text)}: error_rate is given in %, e.g. 5%")
        if value > 100:
            raise CriterionError(f"criterion {_quoted(text)}: error_rate cannot exceed 100%")
        return value / 100
    if unit is not None:
        raise CriterionError(f"criterion {_quoted(text)}: {measure} takes a plain number, no unit")
    return value


def _seconds(text: str, value: float, unit: str | None) -> int:
    if unit not in ("s", "m") or value != int(value):
        raise CriterionError(
            f"criterion {_quoted(text)}: a duration is whole seconds or minutes, e.g. 30s or 2m"
        )
    seconds = int(value) * (60 if unit == "m" else 1)
    if not 1 <= seconds <= MAX_WINDOW_S:
        raise CriterionError(
            f"criterion {_quoted(text)}: a duration is 1s to {MAX_WINDOW_S // 60}m"
        )
    return seconds
