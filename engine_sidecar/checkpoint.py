"""The sidecar's write-ahead checkpoint: where in the results file, which batch comes next.

Before a batch is sent, its sequence number and byte range are written down (``pending``); after
the broker acknowledged it, the range becomes the committed offset — on disk with the next
batch's pending entry, or at stop. A sidecar restarted after a SIGKILL first re-sends a pending
batch with the same sequence and the same records, so the consumer's dedupe by (engine, sequence)
sees an exact repeat — never a batch that differs.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pending:
    seq: int
    start_offset: int
    start_line: int
    end_offset: int
    end_line: int


@dataclass(frozen=True)
class Checkpoint:
    run_id: str
    engine_id: str
    file_dev: int
    file_ino: int
    offset: int = 0
    line_no: int = 1
    next_seq: int = 0
    pending: Pending | None = None

    def save(self, path: Path) -> None:
        """Atomically: a crash leaves the old or the new checkpoint, never half of one."""
        tmp = path.with_suffix(".tmp")
        data = json.dumps(asdict(self)).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        try:
            raw = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        pending = raw.pop("pending", None)
        return cls(**raw, pending=Pending(**pending) if pending else None)
