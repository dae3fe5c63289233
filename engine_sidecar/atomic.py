"""The sidecar's one way to write a file: atomically and durably.

A crash (or a power cut) leaves the old content or the new one, never half of either: the bytes
go to a temporary file beside the target, are flushed to disk, replace the target in one rename,
and the directory entry is flushed too. Checkpoints, run records, the commands seen and
downloaded plan files all go through here.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path``'s content with ``data``."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    commit(tmp, path)


def commit(tmp: Path, path: Path) -> None:
    """Make the finished file ``tmp`` (its bytes already flushed) the file ``path``."""
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
