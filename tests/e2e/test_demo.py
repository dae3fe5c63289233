"""README's main command, shortened: the API, the local scheduler and real JMeter engines, with
an exact report from ClickHouse; and the pipeline alone with simulated engines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from shibuya.dev.procs import free_port


def _demo(bootstrap: str, cwd: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "shibuya", "dev", "demo", "--bootstrap", bootstrap, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return " ".join(result.stdout.split())


@pytest.mark.integration
def test_demo_with_simulated_engines_reports_exact_counts(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    out = _demo(
        kafka_bootstrap,
        tmp_path,
        "--simulate",
        "--engines",
        "3",
        "--seconds",
        "3",
        "--rate",
        "1000",
    )
    # 3 engines × 6 batches × 500 samples, each counted once, all of them in ClickHouse.
    assert (
        "Report: 9,000 samples sent, 9,000 counted by the worker, 9,000 in ClickHouse — exact"
        in out
    )
    assert "results from ClickHouse" in out  # the per-label table read back from it
    assert "Redelivered batches dropped: 1" in out
    assert "malformed messages skipped and reported: 1" in out
    assert "worker: stopped" in out


@pytest.mark.integration
def test_main_job_through_the_api_counts_every_sample_of_the_engines_jtl_files(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """README's main command, shorter: project, plan, collection from the example YAML, deploy
    with the local scheduler, real JMeter, the report from ClickHouse, purge, everything
    stopped. ClickHouse must hold exactly the samples of the JTL files."""
    out = _demo(kafka_bootstrap, tmp_path, "--engines", "2", "--seconds", "10")
    [in_jtl, stored] = re.findall(
        r"Samples: ([\d,]+) in the engines' JTL files, ([\d,]+) in ClickHouse — exact", out
    )[0]
    assert in_jtl == stored
    assert int(in_jtl.replace(",", "")) > 0
    assert "demo/main-job from main-job.yaml: 2 engines × 2 threads for 10s" in out
    assert "Deploy: launch 1, 2 engines (4 virtual users)" in out
    assert "2 ready" in out  # the status table before the run
    # The report's total row has the same count as the JTL files; the stream's verdicts.
    assert re.search(rf"all labels\s*│\s*{in_jtl}\s*│", out), out
    assert re.search(r"finished — 2 of 2 engines finished", out), out
    assert re.search(r"p95\(elapsed\) > 2s for 10s\s*│\s*passed", out), out
    assert re.search(r"error_rate > 5% over 10s\s*│\s*passed", out), out
    assert "Purge: 2 engines removed" in out
    (page,) = (tmp_path / ".shibuya" / "reports").glob("run-*.html")  # the HTML report
    assert re.search(rf"HTML report \(charts, verdicts, failures, engines\): \S*{page.name}", out)
    assert "<h2>Per label</h2>" in page.read_text()
    assert "API: stopped" in out
    assert "Stream worker: stopped" in out
    assert not list((tmp_path / ".shibuya" / "api" / "engines").glob("*/*/engine.json"))


@pytest.mark.integration
def test_main_job_on_its_own_broker_runs_on_an_authenticated_bus(tmp_path: Path) -> None:
    """As on a fresh machine: no broker answers, so the main job starts its own — with SASL/SCRAM
    and ACLs, the worker, the API and the engines each its own principal — and still counts every
    sample."""
    out = _demo(f"127.0.0.1:{free_port()}", tmp_path, "--engines", "1", "--seconds", "10")
    assert "SASL/SCRAM, each part its own principal with its ACLs" in out
    [in_jtl, stored] = re.findall(
        r"Samples: ([\d,]+) in the engines' JTL files, ([\d,]+) in ClickHouse — exact", out
    )[0]
    assert in_jtl == stored
    assert int(in_jtl.replace(",", "")) > 0
    assert re.search(r"finished — 1 of 1 engines finished", out), out
    assert "Kafka: stopped" in out
