"""Processes that outlive the one that started them: started in their own session, watched by
PID, waited for by polling. The local scheduler's engines use them, and so do the development
services (``shibuya.dev.procs``)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


def spawn(
    argv: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None,
    fd3: Path | None = None,
) -> int:  # fmt: skip
    """Start ``argv`` in its own session (it survives our exit), output appended to ``log``
    (and, if given, ``fd3`` opened for writing as its file descriptor 3).

    ``posix_spawn`` rather than ``Popen``: the caller keeps a PID, not an object that would
    complain when it is collected while the service runs on.
    """
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    actions: list[tuple[Any, ...]] = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, fd, 1),
        (os.POSIX_SPAWN_DUP2, fd, 2),
    ]
    if fd3 is not None:
        actions.append((os.POSIX_SPAWN_OPEN, 3, str(fd3), os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                        0o600))  # fmt: skip
    try:
        return os.posix_spawnp(argv[0], list(argv), dict(env if env is not None else os.environ),
                               file_actions=actions, setsid=True)  # fmt: skip
    finally:
        os.close(fd)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still "exists"; reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == 0


def wait_for(condition: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> bool:
    """Poll ``condition`` until it holds or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)
