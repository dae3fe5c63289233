"""Schemathesis generates requests from the API's own OpenAPI document — valid, invalid and
boundary values, and sequences that reuse created ids — and none may end in a server error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.api import ApiServer

pytestmark = pytest.mark.integration


def test_no_generated_request_gets_a_server_error(api: ApiServer) -> None:
    st = Path(sys.executable).parent / "st"
    result = subprocess.run(
        [str(st), "run", f"{api.base}/openapi.json", "--checks", "not_a_server_error",
         "-H", f"Authorization: Bearer {api.tokens['alice']}", "--max-examples", "30",
         "--seed", os.environ.get("SHIBUYA_FUZZ_SEED", "20261129"), "--no-color"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:]
    assert "Server error" not in result.stdout
