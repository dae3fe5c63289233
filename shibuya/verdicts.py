"""A run's verdicts for people and for CI: numbers at the precision they are known, the breach
as a time and an offset into the run, and JUnit XML (one test case per criterion, the run's
completeness, and each regression against a baseline) that Jenkins and GitLab read.

Times come from ``log2pct`` histograms, within 1 % of the exact value (docs/histograms.md): they
are shown with three significant digits, never more — ``355 ms``, not ``354.77 ms``.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from wire.criteria import CriterionError, parse


def ms(v: float) -> str:
    """Milliseconds with three significant digits: ``1.01``, ``12.3``, ``355``, ``1,230``."""
    if v <= 0 or not math.isfinite(v):
        return "0" if v == 0 else str(v)
    rounded = float(f"{v:.3g}")
    digits = math.floor(math.log10(rounded))
    return f"{rounded:,.{max(0, 2 - digits)}f}"


def measured(criterion: str, v: float | None) -> str:
    """A criterion's value in its units: ``612 ms``, ``4.20%``, ``95.0/s``, ``12``."""
    if v is None:
        return "—"
    try:
        unit = parse(criterion).unit
    except CriterionError:
        return f"{v:g}"
    if unit == "ms":
        return f"{ms(v)} ms"
    if unit == "%":
        return f"{v:.2%}"
    return f"{v:,.1f}/s" if unit == "/s" else f"{v:,.0f}"


def offset(seconds: float) -> str:
    """``+42s``, ``+3m05s``, ``+1h02m03s``."""
    s = max(0, int(seconds))
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return f"+{h}h{m:02d}m{s:02d}s" if h else f"+{m}m{s:02d}s" if m else f"+{s}s"


def at(second_s: int | None, run: dict[str, Any]) -> str:
    """A breach second as ``HH:MM:SS UTC (+offset into the run)``."""
    if second_s is None:
        return ""
    when = datetime.fromtimestamp(second_s, UTC)
    started = run.get("started_at")
    into = ""
    if started:
        into = f" ({offset(second_s - datetime.fromisoformat(started).timestamp())})"
    return f"{when:%H:%M:%S} UTC{into}"


def word(c: dict[str, Any]) -> str:
    """passed, FAILED, NOT EVALUATED (it could not be judged: invalid, no data) or undecided."""
    if c.get("passed") is None:
        return "undecided"
    if c["passed"]:
        return "passed"
    return "NOT EVALUATED" if c.get("error") else "FAILED"


def basis(c: dict[str, Any]) -> str:
    """What a verdict rests on: ``30 s, 4,300 samples``."""
    if not c.get("seconds"):
        return ""
    return f"{c['seconds']:,} s, {c.get('samples', 0):,} samples"


def summary(c: dict[str, Any], run: dict[str, Any]) -> str:
    """One line: what was measured against what, over what — and when it breached."""
    if c.get("error"):
        return str(c["error"])
    text = c["criterion"]
    value, threshold = measured(text, c.get("value")), measured(text, c.get("threshold"))
    op = _op(text)
    line = f"{value} (threshold {op} {threshold}) over {basis(c) or 'nothing'}"
    if c.get("breach_second_s") is not None:
        line = f"breached at {at(c['breach_second_s'], run)}: {line}"
    return line + (f"; {c['note']}" if c.get("note") else "")


def _op(text: str) -> str:
    try:
        return parse(text).op
    except CriterionError:
        return "?"


def _kind(text: str) -> str:
    try:
        return parse(text).kind
    except CriterionError:
        return "invalid"


def junit(report: dict[str, Any], gates: Sequence[dict[str, Any]] = ()) -> str:
    """The run as a JUnit test suite: a case for its completeness (it finished and every sample
    its engines published was counted), one per criterion (classed by label), and one per
    label measure compared with a baseline. Nothing passes by default: an undecided or
    unevaluated criterion is an error."""
    run = report["run"]
    suite = ET.Element("testsuite", name=f"shibuya run {run['id']}")
    props = ET.SubElement(suite, "properties")
    for name in ("id", "collection_id", "outcome", "reason", "started_at", "ended_at"):
        ET.SubElement(props, "property", name=f"run.{name}", value=str(run.get(name) or ""))
    cases: list[ET.Element] = []
    whole = ET.Element("testcase", classname="shibuya.run", name="the run finished, every "
                       "sample counted", time="0")  # fmt: skip
    if run.get("outcome") != "finished" or run.get("samples_missing"):
        missing = run.get("samples_missing") or 0
        why = f"{run.get('outcome') or run.get('state')}: {run.get('reason', '')}"
        _child(whole, "failure", why + (f" ({missing:,} samples missing)" if missing else ""),
               "run")  # fmt: skip
    cases.append(whole)
    for c in run.get("criteria", []):
        try:
            label = parse(c["criterion"]).label
        except CriterionError:
            label = None
        case = ET.Element("testcase", classname="shibuya.criteria" + (f".{label}" if label else ""),
                          name=c["criterion"], time="0")  # fmt: skip
        if c.get("passed") is None:
            _child(case, "error", "undecided: the run has not ended", "undecided")
        elif c.get("error"):
            kind = "invalid" if _kind(c["criterion"]) == "invalid" else "not evaluated"
            _child(case, "error", str(c["error"]), kind)
        elif not c["passed"]:
            _child(case, "failure", summary(c, run), _kind(c["criterion"]))
        ET.SubElement(case, "system-out").text = summary(c, run)
        cases.append(case)
    cases += _regressions(gates)
    suite.extend(cases)
    failures = sum(case.find("failure") is not None for case in cases)
    errors = sum(case.find("error") is not None for case in cases)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", "0")
    suite.set("time", f"{_duration(run):.3f}")
    if run.get("started_at"):
        suite.set(
            "timestamp", datetime.fromisoformat(run["started_at"]).strftime("%Y-%m-%dT%H:%M:%S")
        )
    root = ET.Element("testsuites", name="shibuya", tests=str(len(cases)), failures=str(failures),
                      errors=str(errors), time=f"{_duration(run):.3f}")  # fmt: skip
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _regressions(gates: Sequence[dict[str, Any]]) -> list[ET.Element]:
    out = []
    for g in gates:
        case = ET.Element("testcase", classname="shibuya.baseline" + (
            f".{g['label']}" if g.get("label") else ""), name=g["name"], time="0")  # fmt: skip
        if not g["passed"]:
            kind = "error" if g.get("error") else "failure"
            _child(case, kind, g["detail"], "regression")
        ET.SubElement(case, "system-out").text = g["detail"]
        out.append(case)
    return out


def _child(case: ET.Element, tag: str, message: str, kind: str) -> None:
    ET.SubElement(case, tag, message=message, type=kind).text = message


def _duration(run: dict[str, Any]) -> float:
    if not run.get("started_at") or not run.get("ended_at"):
        return 0.0
    start, end = (datetime.fromisoformat(run[k]) for k in ("started_at", "ended_at"))
    return max(0.0, (end - start).total_seconds())
