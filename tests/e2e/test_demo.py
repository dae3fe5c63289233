"""README's main command, shortened: Kafka + worker + batches through + an exact report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.integration
def test_demo_pushes_batches_through_and_reports_exact_counts(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "shibuya",
            "dev",
            "demo",
            "--engines",
            "3",
            "--seconds",
            "3",
            "--rate",
            "1000",
            "--bootstrap",
            kafka_bootstrap,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = " ".join(result.stdout.split())
    # 3 engines × 6 batches × 500 samples, each counted once.
    assert "Report: 9,000 samples sent, 9,000 counted — exact" in out
    assert "redelivered batches dropped: 1" in out
    assert "malformed messages skipped and reported: 1" in out
    assert "worker: stopped" in out
