"""The sidecar's write-ahead checkpoint: where in the results file, which batch comes next.

Before a batch is sent, its sequence number and byte range are written down (``pending``); after
the broker acknowledged it, the range becomes the committed offset — on disk with the next
batch's pending entry, or at stop. A sidecar restarted after a SIGKILL first re-sends a pending
batch with the same sequence and the same records, so the consumer's dedupe by (engine, sequence)
sees an exact repeat — never a batch that differs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from engine_sidecar.atomic import write_atomic


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
        write_atomic(path, json.dumps(asdict(self)).encode())

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        try:
            raw = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        pending = raw.pop("pending", None)
        return cls(**raw, pending=Pending(**pending) if pending else None)
