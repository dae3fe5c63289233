"""``shibuya run``'s exit codes: what CI acts on."""

from __future__ import annotations

from typing import Any

import pytest

from shibuya.client import exit_code


def _run(outcome: str, *failed: str, passed: tuple[str, ...] = ()) -> dict[str, Any]:
    criteria = [{"criterion": c, "passed": False} for c in failed]
    criteria += [{"criterion": c, "passed": True} for c in passed]
    return {"outcome": outcome, "criteria": criteria}


def _unevaluated(outcome: str) -> dict[str, Any]:
    error = "not evaluated: no second of the run was judged"
    criteria = [{"criterion": "error_rate > 5% over 60s", "passed": False, "error": error}]
    return {"outcome": outcome, "criteria": criteria}


@pytest.mark.parametrize(
    ("run", "code"),
    [
        (_run("finished", passed=("p95(elapsed) > 1s for 5s",)), 0),
        (_run("failed"), 3),
        (_run("aborted"), 3),  # stopped by someone, no criterion failed
        (_run("aborted", "p95(elapsed) > 1s for 5s"), 17),
        (_run("finished", "error_rate > 1% over 60s"), 18),
        (_run("aborted", "rps < 10 for 5s"), 20),
        (_run("aborted", "max(latency) > 2s for 1s", "failures > 10 over 60s"), 19),
        (_run("finished", "p95(elapsed) > 5 parsecs for 3s"), 24),
        ({**_run("finished", passed=("rps < 10 for 5s",)), "samples_missing": 3}, 3),  # lost data
        (_unevaluated("aborted"), 3),  # stopped before anything was judged: the stop says why
        (_unevaluated("finished"), 18),  # a whole run that never judged it: the criterion failed
    ],
)
def test_exit_codes(run: dict[str, Any], code: int) -> None:
    assert exit_code(run) == code
