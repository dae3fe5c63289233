"""Faust tables: small state, changelogged, restored by whoever owns the partition next."""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types import TableT

ENGINE_PROGRESS = "engine-progress"


def changelog_topic(app_id: str, table: str) -> str:
    """Faust's name for a table's changelog topic: readable by anyone, e.g. an operator view."""
    return f"{app_id}-{table}-changelog"


@dataclass(frozen=True)
class Tables:
    engine_progress: TableT[str, dict[str, int]]
    """Key ``<run>/<engine>`` (the result key, so co-partitioned with the results topic).
    Value ``{"seq": last batch sequence applied, "samples": samples counted}``."""


def declare(app: faust.App, partitions: int) -> Tables:
    return Tables(
        engine_progress=app.Table(
            ENGINE_PROGRESS,
            # No value_type: Faust 0.15 cannot restore a `dict`-typed table from its changelog
            # ("type object 'dict' has no attribute 'from_data'"); untyped JSON restores fine.
            key_type=str,
            partitions=partitions,
        ),
    )
