"""A run's results through the API: the report, the per-second series, the live stream (SSE) and
the comparison of two runs — real API server with its ClickHouse sink, real broker, a real
worker; engines are heartbeats and generated result batches with exactly known contents."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import FAST, ApiServer, make_collection
from tests.support.browser import opened
from tests.support.junit import junit_schema
from tests.support.lifecycle import Harness
from tests.support.stream import GeneratedRun, Workers, generate, send
from tests.support.waiting import wait_until
from wire import EngineState, Topic

pytestmark = pytest.mark.integration


def _events(
    api: ApiServer, run_id: str, *, params: Any = None, headers: Any = None
) -> list[tuple[str, str | None, Any]]:
    """Every (event, id, data) of the run's live stream, until its ``end``."""
    out: list[tuple[str, str | None, Any]] = []
    with api.client("alice") as c, c.stream("GET", f"/api/runs/{run_id}/live", params=params,
                                            headers=headers, timeout=120) as r:  # fmt: skip
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        event: dict[str, str] = {}
        for line in r.iter_lines():
            if line:
                field, _, value = line.partition(": ")
                event[field] = value
                continue
            out.append((event["event"], event.get("id"), json.loads(event["data"])))
            if event["event"] == "end":
                return out
            event = {}
    raise AssertionError(f"the stream closed without an end: {out}")


def _run(api: ApiServer, harness: Harness, workers: Workers, collection: int, seed: int,
         per_second: int, live: list[Any] | None = None) -> tuple[str, GeneratedRun]:  # fmt: skip
    """Trigger a run, feed it generated results from two engines; wait until it has ended and
    ClickHouse holds all of it."""
    with api.client("alice") as c:
        r = c.post(f"/api/collections/{collection}/runs")
        assert r.status_code == 201, r.text
        run_id = r.json()["id"]
    follower = None
    if live is not None:
        follower = threading.Thread(target=lambda: live.extend(_events(api, run_id)), daemon=True)
        follower.start()
    run = generate(run_id, engines=2, seconds=4, per_second=per_second, seed=seed,
                   start_s=int(time.time()) - 1)  # fmt: skip
    harness.add_engines(run_id, str(collection), 2, EngineState.RUNNING)
    harness.set_engines(f"{collection}-", published=run.expected.total // 2)
    send(harness.bootstrap, harness.topics[Topic.RESULTS], run.messages)

    def report() -> dict[str, Any]:
        with api.client("alice") as c:
            body: dict[str, Any] = c.get(f"/api/runs/{run_id}/report").json()
            return body

    def done() -> bool:
        r = report()
        return r["run"]["outcome"] is not None and (r["total"] or {}).get("samples") == (
            run.expected.total
        )

    wait_until("the run to end with all its samples stored", done, 90,
               lambda: f"{report()}\n{workers.logs()}")  # fmt: skip
    if follower is not None:
        follower.join(60)
    return run_id, run


def test_the_report_series_and_live_stream_count_every_sample(
    live_api: ApiServer, workers: Workers, harness: Harness
) -> None:
    workers.start(**FAST)
    workers.wait_settled()
    collection, _ = make_collection(live_api, duration_s=3)
    live: list[Any] = []
    run_id, run = _run(live_api, harness, workers, collection, seed=7, per_second=200, live=live)
    expected = run.expected
    with live_api.client("alice") as c:
        report = c.get(f"/api/runs/{run_id}/report").json()
        series = c.get(f"/api/runs/{run_id}/series").json()
        one_label = c.get(f"/api/runs/{run_id}/series", params={"label": "GET /item/0"}).json()

    # The report: totals and every label exact; percentiles within the histograms' 1 %.
    assert report["run"]["outcome"] == "finished"
    assert report["run"]["samples"] == expected.total  # the stream's own count agrees
    total = report["total"]
    assert total["samples"] == expected.total
    assert total["failures"] == sum(c["failures"] for c in expected.cells.values())
    assert sum(total["codes"].values()) == expected.total
    assert set(total["codes"]) == {"200", "500", "503"}
    labels = {s["label"]: s for s in report["labels"]}
    assert set(labels) == set(expected.elapsed)
    for label, s in labels.items():
        cells = [c for (name, _), c in expected.cells.items() if name == label]
        assert s["samples"] == sum(c["count"] for c in cells)
        assert s["failures"] == sum(c["failures"] for c in cells)
        assert s["error_rate"] == pytest.approx(s["failures"] / s["samples"])
        assert sum(s["failure_messages"].values()) == s["failures"]  # by message, exactly
        for q, key in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
            assert s["elapsed"][key] == pytest.approx(expected.percentile(label, q), rel=0.01)
        assert s["elapsed_min_ms"] == min(expected.elapsed[label])
        assert s["elapsed_max_ms"] == max(expected.elapsed[label])
        # Never past the exact extremes (a bucket's representative can be).
        assert s["elapsed_min_ms"] <= s["elapsed"]["p50"] <= s["elapsed"]["p99_9"]
        assert s["elapsed"]["p99_9"] <= s["elapsed_max_ms"]
        assert s["latency"]["p99_9"] <= s["elapsed_max_ms"]

    # The series: one row per second, adding up to the same counts.
    assert [s["second"] for s in series] == sorted(expected.seconds)
    assert [s["samples"] for s in series] == [expected.seconds[s] for s in sorted(expected.seconds)]
    label_0 = {
        sec: c["count"] for (name, sec), c in expected.cells.items() if name == "GET /item/0"
    }
    assert {s["second"]: s["samples"] for s in one_label} == label_0

    # Live while it ran: statuses, seconds in order (each once), then the end.
    kinds = [k for k, _, _ in live]
    assert kinds[-1] == "end"
    assert kinds.count("end") == 1
    assert "status" in kinds
    assert live[-1][2]["outcome"] == "finished"
    seen = [int(i) for k, i, _ in live if k == "second"]
    assert seen == sorted(set(seen))
    assert sum(d["samples"] for k, _, d in live if k == "second") <= expected.total
    # Before a second's final row, provisional ones (what it held so far, without an id): never
    # more than the final count, never after the final row.
    provisional = [(n, d) for n, (k, _, d) in enumerate(live) if k == "provisional"]
    assert provisional, kinds
    final_at = {int(i): (n, d) for n, (k, i, d) in enumerate(live) if k == "second" and i}
    for n, d in provisional:
        assert live[n][1] is None
        assert d["second"] in expected.seconds
        assert d["samples"] <= expected.seconds[d["second"]]
        if d["second"] in final_at:
            assert n < final_at[d["second"]][0]

    # Live after the end: every second exactly, then the end; a client resuming after a
    # second (Last-Event-ID) gets only the seconds after it.
    after = _events(live_api, run_id)
    assert [(k, d["samples"]) for k, _, d in after[:-1]] == [
        ("second", s["samples"]) for s in series
    ]
    assert after[-1][0] == "end"
    resumed = _events(live_api, run_id, headers={"Last-Event-ID": str(series[1]["second"])})
    assert [int(i or 0) for k, i, _ in resumed if k == "second"] == [
        s["second"] for s in series[2:]
    ]

    one_label_live = _events(live_api, run_id, params={"label": "GET /item/0"})
    assert {d["second"]: d["samples"] for k, _, d in one_label_live if k == "second"} == label_0

    # Pollers revalidate: the same answer again is a 304 without a body, for its owner only.
    with live_api.client("alice") as c:
        first = c.get(f"/api/runs/{run_id}/report")
        etag = first.headers["etag"]
        assert first.headers["cache-control"] == "private, no-cache"
        for sent in (etag, f"W/{etag}", f'"other", {etag}'):
            again = c.get(f"/api/runs/{run_id}/report", headers={"If-None-Match": sent})
            assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
        assert c.get(f"/api/runs/{run_id}/report",
                     headers={"If-None-Match": '"other"'}).content == first.content  # fmt: skip
        label_etag = c.get(f"/api/runs/{run_id}/series", params={"label": "GET /item/0"})
        assert label_etag.headers["etag"] != etag  # each answer its own tag

    with live_api.client("bob") as c:  # another group's run does not exist
        assert c.get(f"/api/runs/{run_id}/report",
                     headers={"If-None-Match": etag}).status_code == 404  # fmt: skip
        for path in ("report", "report.html", "series", "live", f"compare/{run_id}"):
            assert c.get(f"/api/runs/{run_id}/{path}").status_code == 404


def test_two_runs_compared_label_by_label(
    live_api: ApiServer, workers: Workers, harness: Harness, tmp_path: Path
) -> None:
    workers.start(**FAST)
    workers.wait_settled()
    collection, _ = make_collection(live_api, duration_s=3)
    a_id, a = _run(live_api, harness, workers, collection, seed=1, per_second=100)
    b_id, b = _run(live_api, harness, workers, collection, seed=2, per_second=150)
    with live_api.client("alice") as c:
        r = c.get(f"/api/runs/{a_id}/compare/{b_id}")
        assert r.status_code == 200, r.text
        cmp = r.json()
    assert (cmp["a"]["id"], cmp["b"]["id"]) == (a_id, b_id)
    samples = cmp["total"]["changes"]["samples"]
    assert (samples["a"], samples["b"]) == (a.expected.total, b.expected.total)
    assert samples["delta"] == b.expected.total - a.expected.total
    assert samples["percent"] == pytest.approx(100 * (b.expected.total / a.expected.total - 1))
    rows = {row["label"]: row for row in cmp["labels"]}
    assert set(rows) == set(a.expected.elapsed) | set(b.expected.elapsed)
    for label, row in rows.items():
        assert (row["in_a"], row["in_b"]) == (
            label in a.expected.elapsed,
            label in b.expected.elapsed,
        )
        n_a = sum(c["count"] for (name, _), c in a.expected.cells.items() if name == label)
        n_b = sum(c["count"] for (name, _), c in b.expected.cells.items() if name == label)
        assert (row["changes"]["samples"]["a"], row["changes"]["samples"]["b"]) == (n_a, n_b)
        p95 = row["changes"]["p95"]
        assert p95["a"] == pytest.approx(a.expected.percentile(label, 0.95), rel=0.01)
        assert p95["delta"] == pytest.approx(p95["b"] - p95["a"])

    # The client commands print the same numbers.
    env = {**os.environ, "SHIBUYA_URL": live_api.base, "SHIBUYA_TOKEN": live_api.tokens["alice"],
           "COLUMNS": "250"}  # fmt: skip

    def shibuya(*args: str, code: int = 0) -> str:
        argv = [sys.executable, "-m", "shibuya", *args]
        out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == code, out.stdout + out.stderr
        return out.stdout

    printed = shibuya("report", b_id)
    assert f"{b.expected.total:,}" in printed
    assert "failures by message" in printed
    assert "error_rate > 50% over 3s" in printed  # the verdicts
    as_json = json.loads(shibuya("report", b_id, "--output", "json"))
    assert as_json["total"]["samples"] == b.expected.total
    compared = shibuya("compare", a_id, b_id)
    assert f"{a.expected.total:,} → {b.expected.total:,}" in compared

    # The baseline gate, on the comparison's own numbers: a has two thirds of b's rate.
    def regressed(row: dict[str, Any]) -> bool:
        rps = row["changes"]["rps"]
        return rps["a"] is None or rps["b"] is None or rps["b"] < rps["a"] * 0.95

    assert not regressed(cmp["total"])
    expected = 32 if any(map(regressed, cmp["labels"])) else 0
    gated = shibuya("report", b_id, "--baseline", "last-passed", "--max-regression", "rps 5%",
                    "--output", "json", code=expected)  # fmt: skip
    baseline = json.loads(gated)["baseline"]
    assert baseline["comparison"]["a"]["id"] == a_id  # the newest earlier run that passed
    assert [g["passed"] for g in baseline["gates"]] == [
        not regressed(r) for r in [cmp["total"], *cmp["labels"]]
    ]
    xml, md, page = tmp_path / "verdicts.xml", tmp_path / "summary.md", tmp_path / "report.html"
    shibuya("report", a_id, "--baseline", b_id, "--max-regression", "rps 5%", "--junit", str(xml),
            "--markdown", str(md), "--html", str(page), code=16 + 16)  # fmt: skip
    with opened(page, "window.shibuyaCharts !== undefined") as shown:
        assert shown.problems == []
        compared = shown.js("[...document.querySelectorAll('#comparison tbody tr')].length")
        assert compared == len(cmp["labels"]) + 1
        verdicts = shown.js("[...document.querySelectorAll('#gates tbody tr')].map("
                            "r => r.cells[2].textContent)")  # fmt: skip
        assert "REGRESSED" in verdicts  # the whole run's rate fell by a third
        assert shown.js("window.shibuyaCharts['chart-rate'].data[1].reduce((a, b) => a + b)") == (
            a.expected.total
        )
    junit_schema().validate(str(xml))
    assert 'name="rps 5% vs ' + b_id in xml.read_text()
    assert "| all labels |" in md.read_text()
    assert "REGRESSED" in md.read_text()
