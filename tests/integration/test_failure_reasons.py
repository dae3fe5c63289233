"""Real JMeter engines, a real broker, worker and ClickHouse: every failure counted under its
message exactly as the engines' results files hold it, and the criteria judged on the real run —
one fails at the end without stopping it, one passes on what it measured, one on a label that
never ran is not evaluated. The run's HTML report, opened in a real headless chromium, shows the
same numbers and draws the run's points, without an error or a request."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from control.results.numbers import ms, verdict
from tests.support.api import JMX
from tests.support.browser import opened
from tests.support.local_runs import Bus, Load, run_on_local_engines

pytestmark = pytest.mark.integration

#: An assertion every GET fails (POST /login fails every 50th request with a 500 of the target).
ASSERTION = (
    b'<ResponseAssertion guiclass="AssertionGui" testclass="ResponseAssertion" '
    b'testname="never there"><collectionProp name="Asserion.test_strings">'
    b'<stringProp name="1">never-there</stringProp></collectionProp>'
    b'<stringProp name="Assertion.test_field">Assertion.response_data</stringProp>'
    b'<boolProp name="Assertion.assume_success">false</boolProp>'
    b'<intProp name="Assertion.test_type">2</intProp></ResponseAssertion><hashTree/>'
)
SAMPLER_END = b"</HTTPSamplerProxy>\n        <hashTree"
PLAN = JMX.replace(SAMPLER_END + b"/>", SAMPLER_END + b">" + ASSERTION + b"</hashTree>", 1)
CRITERIA = (
    "error_rate > 1% over run",
    "p95(elapsed) > 10s for 3s",
    'p95(elapsed) on "GET /nothing" > 1s over 2s',
)


def test_failures_by_message_and_verdicts_on_a_real_run(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    assert PLAN.count(b"never-there") == 1
    ran = run_on_local_engines(tmp_path, Bus(kafka_bootstrap), duration_s=5,
                               test=Load(jmx=PLAN, thresholds=CRITERIA))  # fmt: skip
    assert ran.run["samples"] == ran.written == ran.stored > 0
    get = 'GET /items, "all"'
    assert set(ran.failed[get]) == {"Test failed: text expected to contain /never-there/"}

    # Failures by message, per label: exactly the results files', adding up to the failures.
    labels = {s["label"]: s for s in ran.report["labels"]}
    assert {label: s["failure_messages"] for label, s in labels.items() if s["failures"]} == {
        label: dict(messages) for label, messages in ran.failed.items()
    }
    for s in [*labels.values(), ran.report["total"]]:
        assert sum(s["failure_messages"].values()) == s["failures"]

    # The verdicts: failed at the end (the run was not stopped), passed, not evaluated.
    assert ran.run["outcome"] == "finished", ran.run
    verdicts = {c["criterion"]: c for c in ran.run["criteria"]}
    errors = verdicts["error_rate > 1% over run"]
    total = ran.report["total"]
    # Criteria read the final rows: samples that came after their second closed (a loaded
    # machine) are counted in the report, not in a verdict.
    judged = total["samples"] - ran.report["late_samples"]
    assert (errors["passed"], errors["samples"]) == (False, judged)
    if not ran.report["late_samples"]:
        assert errors["value"] == pytest.approx(total["failures"] / total["samples"])
        assert errors["seconds"] == total["last_second"] - total["first_second"] + 1
    assert errors["value"] == pytest.approx(total["failures"] / total["samples"], abs=0.05)
    slow = verdicts["p95(elapsed) > 10s for 3s"]
    assert (slow["passed"], slow["threshold"], slow["samples"]) == (True, 10_000, judged)
    assert total["elapsed_min_ms"] <= slow["value"] <= total["elapsed_max_ms"]
    nothing = verdicts['p95(elapsed) on "GET /nothing" > 1s over 2s']
    assert (nothing["passed"], nothing["error"]) == (
        False,
        f'not evaluated: no samples on "GET /nothing" in {errors["seconds"]} s',
    )
    _html_report_shows_the_run(tmp_path / "report.html", ran.html, ran.report, ran.series)


def _html_report_shows_the_run(path: Path, html: str, report: dict[str, Any],
                               series: list[dict[str, Any]]) -> None:  # fmt: skip
    path.write_text(html)
    if os.environ.get("SHIBUYA_KEEP_REPORT"):  # to look at it
        shutil.copy(path, os.environ["SHIBUYA_KEEP_REPORT"])
    with opened(path, "window.shibuyaCharts !== undefined") as page:
        assert page.problems == []  # no console error, no request: self-contained
        assert page.js("document.getElementById('run-verdict').textContent") == verdict(
            report["run"]
        )
        rows = page.js("[...document.querySelectorAll('#label-table tbody tr')].map("
                       "r => [...r.cells].map(c => c.textContent))")  # fmt: skip
        every = [*report["labels"], report["total"] | {"label": "all labels"}]
        expected = [[s["label"], f"{s['samples']:,}", f"{s['failures']:,}",
                     f"{s['error_rate']:.2%}", f"{s['rps']:,.1f}",
                     *(ms(s["elapsed"][q]) for q in ("p50", "p90", "p95", "p99", "p99_9")),
                     f"{s['elapsed_max_ms']:,}"]
                    for s in every]  # fmt: skip
        assert rows == expected
        failures = page.js("[...document.querySelectorAll('#failures tbody tr')].map("
                           "r => [r.cells[0].textContent, r.cells[1].textContent, "
                           "r.cells[2].textContent])")  # fmt: skip
        assert failures == [[s["label"], m, f"{n:,}"] for s in report["labels"]
                            for m, n in s["failure_messages"].items()]  # fmt: skip
        # The charts hold the run's points: every second, every sample.
        rate = page.js("window.shibuyaCharts['chart-rate'].data")
        assert rate[0] == [r["second"] for r in series]
        assert rate[1] == [r["samples"] for r in series]
        assert sum(rate[1]) == report["total"]["samples"]
        assert sum(rate[2]) == report["total"]["failures"]
        p95 = page.js("window.shibuyaCharts['chart-latency'].data[3]")
        assert p95 == [r["elapsed"]["p95"] for r in series]
        assert page.js("document.querySelectorAll('#chart-rate canvas').length") == 1
        # One label on demand: its own points.
        for s in report["labels"]:
            page.page.select_option("#label-pick", s["label"])
            assert sum(page.js("window.shibuyaCharts['chart-label-rate'].data[1]")) == s["samples"]
        cpu = page.js("window.shibuyaCharts['chart-cpu'].data")
        assert len(cpu) == 1 + 2  # the time axis, and each of the two engines
        assert page.problems == []
