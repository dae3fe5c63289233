"""The benchmarks that need no services run as documented, on a small input. Their figures are
not checked: speed is measured by running them (docs/stream-measurements.md), never asserted
in a test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_aggregation_benchmark_prints_its_table_against_its_baseline() -> None:
    args = ["bench/aggregate.py", "--batches", "4", "--per-batch", "500"]
    out = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                         check=True, env={**os.environ, "COLUMNS": "200"}).stdout  # fmt: skip
    assert "2,000 samples, 500 per batch, 20 labels" in out
    assert "plain Python loop (baseline" in out
    assert "Aggregator (numpy, streams/aggregate.py)" in out
