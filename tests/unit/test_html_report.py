"""The HTML report's page, without a browser: what users control (labels, messages, criteria)
is escaped everywhere, the embedded data cannot close its script, and nothing is fetched."""

from __future__ import annotations

import json
import re
from typing import Any

from control.results.html import CSP, Page, render

EVIL = '</script><script>alert("x")</script><img src=x onerror=alert(1)>'


def _summary(label: str | None) -> dict[str, Any]:
    q = {"p50": 1.0, "p90": 2.0, "p95": 3.0, "p99": 4.0, "p99_9": 5.0}
    return {"label": label, "plan_id": "1", "samples": 10, "failures": 2, "error_rate": 0.2,
            "rps": 5.0, "elapsed_min_ms": 1, "elapsed_mean_ms": 2.0, "elapsed_max_ms": 6,
            "elapsed": q, "latency": q, "connect": q, "codes": {"200": 8, "": 2},
            "failure_messages": {EVIL: 2}, "first_second": 100, "last_second": 101}  # fmt: skip


def test_what_users_control_is_escaped_and_nothing_is_fetched() -> None:
    run = {"id": "run-0123456789ab", "collection_id": 1, "state": "finished",
           "outcome": "finished", "reason": EVIL, "started_at": "2026-12-05T10:00:00+00:00",
           "ended_at": "2026-12-05T10:00:02+00:00",
           "criteria": [{"criterion": f'error_rate on "{EVIL}" > 5% over run', "passed": False,
                         "error": EVIL}]}  # fmt: skip
    second = {"second": 100, "samples": 10, "failures": 2, "error_rate": 0.2, "threads": 1,
              "elapsed_mean_ms": 2.0, "elapsed": _summary(None)["elapsed"], "bytes_recv": 0,
              "bytes_sent": 0, "failure_messages": {EVIL: 2}}  # fmt: skip
    page = render(Page(report={"run": run, "total": _summary(None), "labels": [_summary(EVIL)],
                               "late_samples": 0},
                       series=[second], label_series={EVIL: [second]}))  # fmt: skip
    data = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page, re.S)
    assert data is not None
    assert json.loads(data.group(1))["label_series"] == {EVIL: [second]}  # intact, once parsed
    outside = page.replace(data.group(0), "")
    assert "<script>alert" not in outside
    assert "<img src=x" not in outside
    assert (
        outside.count("&lt;/script&gt;&lt;script&gt;alert") >= 4
    )  # verdict, label, message, reason
    assert f'content="{CSP}"' in page
    assert "default-src 'none'" in CSP
    assert not re.search(r"(src|href)=[\"']?https?:", page)  # nothing from the network
    assert "none (transaction)" in page  # a transaction's empty response code, named
