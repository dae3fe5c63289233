"""The sidecar's write-ahead checkpoint: where in the results file, which batch comes next.

Before batches are sent, their sequence numbers and byte ranges are written down (``pending``, a
group of them at once: one write, one fsync); once the broker acknowledged them, their ranges
become the committed offset — on disk with the next group's pending entries, or at stop. A sidecar
restarted after a SIGKILL first re-sends the pending batches, in order, with the same sequences
and the same records, so the consumer's dedupe by (engine, sequence) sees exact repeats — never a
batch that differs.
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
    last: bool = False
    """The engine's last batch (empty): re-sent marked so, the same bytes."""


@dataclass(frozen=True)
class Checkpoint:
    run_id: str
    engine_id: str
    file_dev: int
    file_ino: int
    offset: int = 0
    line_no: int = 1
    next_seq: int = 0
    pending: tuple[Pending, ...] = ()
    """Batches sent and not yet acknowledged, in sequence order, from ``offset`` on."""

    def save(self, path: Path) -> None:
        """Atomically: a crash leaves the old or the new checkpoint, never half of one."""
        write_atomic(path, json.dumps(asdict(self)).encode())

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        try:
            raw = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        pending = raw.pop("pending", None) or []
        if isinstance(pending, dict):  # written by a sidecar that sent one batch at a time
            pending = [pending]
        return cls(**raw, pending=tuple(Pending(**p) for p in pending))
