"""The one way a test waits for a state: poll it with a deadline, and at the deadline fail with
what was awaited and what may tell why. Never a sleep."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    what: str,
    condition: Callable[[], bool],
    timeout_s: float,
    logs: Callable[[], str] | None = None,
    *,
    interval_s: float = 0.1,
) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` and ``logs()`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}\n{logs() if logs else ''}")
        time.sleep(interval_s)
