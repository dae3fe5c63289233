"""README's main command, shortened: Kafka + worker + engines + an exact report from ClickHouse."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest


def _demo(bootstrap: str, cwd: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "shibuya", "dev", "demo", "--bootstrap", bootstrap, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=cwd,
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
def test_demo_with_jmeter_engines_counts_every_sample_of_their_jtl_files(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    out = _demo(kafka_bootstrap, tmp_path, "--engines", "2", "--seconds", "3")
    [(in_jtl, counted, stored)] = re.findall(
        r"Report: ([\d,]+) samples in the engines' JTL files, ([\d,]+) counted by the worker, "
        r"([\d,]+) in ClickHouse — exact",
        out,
    )
    assert in_jtl == counted == stored
    assert int(in_jtl.replace(",", "")) > 0
    assert "Engines not finished: 0" in out
    # The stream tracked the announced run, ended it, and judged its criteria.
    assert (
        f"Run finished: 2 of 2 engines finished; engines 2 of 2 finished, 0 lost; {in_jtl} samples"
        in out
    )
    assert re.search(r"p95\(elapsed\) > 2s for 10s\s*│\s*passed", out), out
    assert re.search(r"error_rate > 5% over 10s\s*│\s*passed", out), out
    assert "worker: stopped" in out
