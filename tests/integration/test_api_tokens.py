"""Users and tokens from the command line: a new token works at once; revoked ones are refused
by a running API (its caller cache off here; with it, within AUTH__CACHE_S); a user is added
once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.api import env_for_tests, start_api

pytestmark = pytest.mark.integration


def _token_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shibuya", "api", "token", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def test_tokens_issued_and_revoked_from_the_cli(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'meta.db'}"
    api = start_api(tmp_path / "api", database, AUTH__CACHE_S="0")
    env = env_for_tests(tmp_path / "api", database)
    try:
        with api.client("alice") as c:
            assert c.get("/api/projects").status_code == 200
        issued = _token_cli(env, "alice")
        assert issued.returncode == 0, issued.stderr
        second = issued.stdout.strip()
        assert second.startswith("shb_")
        assert second != api.tokens["alice"]
        with api.process.client(second) as c:
            assert c.get("/api/projects").status_code == 200

        revoked = _token_cli(env, "alice", "--revoke")
        assert revoked.stdout.strip() == "2 tokens revoked"
        for token in (api.tokens["alice"], second):
            with api.process.client(token) as c:
                assert c.get("/api/projects").status_code == 401
        with api.client("bob") as c:  # other users' tokens are untouched
            assert c.get("/api/projects").status_code == 200
        assert _token_cli(env, "alice", "--revoke").stdout.strip() == "0 tokens revoked"
        unknown = _token_cli(env, "nobody")
        assert unknown.returncode == 2
        assert "no user 'nobody'" in unknown.stderr
        again = subprocess.run([sys.executable, "-m", "shibuya", "api", "add-user", "alice", "-g",
                                "team-a"], env=env, capture_output=True, text=True, timeout=60,
                               check=False)  # fmt: skip
        assert again.returncode == 2
        assert "user 'alice' exists already" in again.stderr
    finally:
        api.stop()
