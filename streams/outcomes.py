"""What became of a message an agent took in: one vocabulary for every agent, its logs and its
``shibuya_*_messages_total{outcome}`` / ``shibuya_ingest_batches_total{outcome}`` counters."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    APPLIED = "applied"
    """It changed what the agent holds."""
    IGNORED = "ignored"
    """Valid, but not the agent's business (a run it does not track, a repeated announcement)."""
    DUPLICATE = "duplicate"
    """A batch applied before (a sidecar re-sent it after a restart): counted once."""
    MALFORMED = "malformed"
    """Not a valid message: counted, logged with its position, skipped."""
    REPLAYED = "replayed"
    """Already covered by a committed flush (read again after a restart or rebalance)."""
