"""A run's verdicts as JUnit XML that Jenkins and GitLab read: a test case for the run's
completeness, one per criterion, and one per regression against a baseline."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from control.results.numbers import summary
from wire.criteria import CriterionError, parse


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
