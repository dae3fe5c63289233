"""Verdicts for people and CI: numbers at the precision the histograms know, breach times, JUnit
XML valid against the schema Jenkins reads, and the baseline gate's arithmetic."""

from __future__ import annotations

from typing import Any

import defusedxml.ElementTree as SafeET
import pytest

from control.results.gates import LimitError, gates, parse_limit
from control.results.numbers import at, measured, ms
from shibuya import client, tables
from shibuya.verdicts import junit
from tests.support.junit import junit_schema


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (1.00995, "1.01"),
        (354.77, "355"),
        (12.345, "12.3"),
        (1234.5, "1,230"),
        (0.5, "0.500"),
        (0, "0"),
        (99.96, "100"),
    ],
)
def test_times_show_what_a_histogram_knows(value: float, shown: str) -> None:
    assert ms(value) == shown


def test_values_read_in_the_criterion_s_units() -> None:
    assert measured("p95(elapsed) > 500ms for 5s", 612.4) == "612 ms"
    assert measured("error_rate > 5% over run", 0.0421) == "4.21%"
    assert measured("rps < 100 for 5s", 95) == "95.0/s"
    assert measured("failures > 0 over 1m", 12) == "12"
    assert measured("nonsense", 1.5) == "1.5"


def test_a_breach_second_reads_as_a_time_and_an_offset() -> None:
    run = {"started_at": "2026-12-05T10:00:00+00:00"}
    assert at(1_796_464_842, run) == "10:00:42 UTC (+42s)"
    assert at(1_796_468_523, run) == "11:02:03 UTC (+1h02m03s)"
    assert at(None, run) == ""


def test_a_transaction_s_empty_code_is_named() -> None:
    assert tables.codes({"": 767, "200": 5}) == "none (transaction):767 200:5"


RUN: dict[str, Any] = {
    "id": "run-0123456789ab", "collection_id": 7, "outcome": "finished", "state": "finished",
    "reason": "2 of 2 engines finished", "started_at": "2026-12-05T10:00:00+00:00",
    "ended_at": "2026-12-05T10:01:30+00:00", "samples_missing": 0,
    "criteria": [
        {"criterion": "p95(elapsed) > 500ms for 30s", "passed": True, "value": 212.0,
         "threshold": 500.0, "seconds": 90, "samples": 9000},
        {"criterion": 'error_rate on "GET /a & <b>" > 5% over 60s', "passed": False,
         "breach_second_s": 1_796_464_842, "value": 0.25, "threshold": 0.05, "seconds": 60,
         "samples": 600},
        {"criterion": "rps < 10 over run", "passed": False, "error": "not evaluated: no samples"},
        {"criterion": "p95(elapsed) > 5 parsecs for 3s", "passed": False, "error": "bad unit"},
    ],
}  # fmt: skip


def _cases(xml: str) -> dict[str, Any]:
    root = SafeET.fromstring(xml)
    return {c.get("name", ""): c for c in root.iter("testcase")}


def test_junit_is_valid_and_says_why_each_case_failed() -> None:
    regression: dict[str, Any] = {
        "name": "p95(elapsed) 10% vs run-a on GET /a", "label": "GET /a",
        "limit": "p95(elapsed) 10%", "passed": False, "error": False,
        "detail": "GET /a: p95 100 ms → 150 ms (50.0% worse; limit 10% worse)",
    }  # fmt: skip
    xml = junit({"run": RUN}, [regression])
    junit_schema().validate(xml)
    root = SafeET.fromstring(xml)
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("6", "2", "2")
    assert suite.get("time") == "90.000"
    cases = _cases(xml)
    assert cases["the run finished, every sample counted"].find("failure") is None
    assert cases["p95(elapsed) > 500ms for 30s"].find("failure") is None
    failed = cases['error_rate on "GET /a & <b>" > 5% over 60s']
    assert failed.get("classname") == "shibuya.criteria.GET /a & <b>"
    failure = failed.find("failure")
    assert failure is not None
    assert failure.get("type") == "errors"
    assert failure.get("message") == ("breached at 10:00:42 UTC (+42s): 25.00% (threshold > "
                                      "5.00%) over 60 s, 600 samples")  # fmt: skip
    unevaluated = cases["rps < 10 over run"].find("error")
    assert unevaluated is not None
    assert unevaluated.get("type") == "not evaluated"
    invalid = cases["p95(elapsed) > 5 parsecs for 3s"].find("error")
    assert invalid is not None
    assert invalid.get("type") == "invalid"
    assert cases[regression["name"]].find("failure") is not None


def test_junit_fails_an_unfinished_or_incomplete_run_even_without_criteria() -> None:
    for run in ({**RUN, "criteria": [], "outcome": "aborted", "reason": "stop requested: me"},
                {**RUN, "criteria": [], "samples_missing": 12},
                {**RUN, "criteria": [{"criterion": "rps < 1 for 1s", "passed": None}],
                 "outcome": None, "ended_at": None}):  # fmt: skip
        xml = junit({"run": run})
        junit_schema().validate(xml)
        suite = SafeET.fromstring(xml).find("testsuite")
        assert suite is not None
        assert int(suite.get("failures") or 0) + int(suite.get("errors") or 0) >= 1


def _comparison() -> dict[str, Any]:
    def row(label: str | None, p95: tuple[float | None, float | None],
            errors: tuple[float, float], rps: tuple[float, float]) -> dict[str, Any]:  # fmt: skip
        changes = {"p95": {"a": p95[0], "b": p95[1]},
                   "error_rate": {"a": errors[0], "b": errors[1]},
                   "rps": {"a": rps[0], "b": rps[1]}}  # fmt: skip
        return {"label": label, "changes": changes}

    return {
        "a": {"id": "run-base"},
        "total": row(None, (100, 109), (0.0, 0.0), (100, 96)),
        "labels": [
            row("GET /a", (100, 111), (0.0, 0.01), (50, 40)),
            row("GET /new", (None, 80), (0.0, 0.0), (0, 10)),
        ],
    }


def test_the_gate_fails_beyond_each_limit_per_label_and_never_by_default() -> None:
    limits = [parse_limit(t) for t in ("p95(elapsed) 10%", "rps 5%", "error_rate 50%")]
    judged = {(g["label"], g["limit"]): g for g in gates(_comparison(), limits)}
    assert judged[(None, "p95(elapsed) 10%")]["passed"] is True  # +9 %
    assert judged[("GET /a", "p95(elapsed) 10%")]["passed"] is False  # +11 %
    assert judged[("GET /a", "p95(elapsed) 10%")]["regression_percent"] == pytest.approx(11)
    assert judged[(None, "rps 5%")]["passed"] is True  # 4 % fewer
    assert judged[("GET /a", "rps 5%")]["passed"] is False  # 20 % fewer
    assert judged[("GET /a", "error_rate 50%")]["passed"] is False  # from none to some
    assert "worse from none" in judged[("GET /a", "error_rate 50%")]["detail"]
    new = judged[("GET /new", "p95(elapsed) 10%")]
    assert (new["passed"], new["error"]) == (False, True)  # nothing to compare with
    assert client.exit_code(RUN | {"criteria": []}, list(judged.values())) == 16 + 16
    assert client.exit_code(RUN | {"criteria": []}, [judged[(None, "rps 5%")]]) == 0


@pytest.mark.parametrize("text", ["p95 10%", "p95(elapsed) 10", "p95(elapsed) ten%", "mean 5%"])
def test_a_limit_that_does_not_parse_says_what_is_expected(text: str) -> None:
    with pytest.raises(LimitError, match="expected a measure and a percentage"):
        parse_limit(text)
