"""Commands to the engines, on the ``commands`` topic, keyed by collection: start, stop, purge.

Every sidecar of a collection reads them; each acts on those that name its plan (and its run).
Schemas and versioning as in :mod:`wire.messages`.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from wire.messages import EngineKind, Id, NonNegative, Seconds, _decode, _decoder, _Message


class PlanFile(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^[^/\\\x00]+$")]
    url: str
    size_bytes: NonNegative
    sha256: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
    csv_header: bool = False
    """A ``.csv`` whose first row is a header: every engine's share of the data gets it."""


class StartEngines(_Message, tag="start", frozen=True, kw_only=True):
    """Start the engines of one plan; each sidecar of the plan picks its share by its index.

    ``command_id`` makes the command idempotent: a sidecar acts on an id once.
    """

    v: Literal[1] = 1
    command_id: Id
    collection_id: Id
    run_id: Id
    plan_id: Id
    engine_count: Annotated[int, msgspec.Meta(ge=1)]
    threads_per_engine: Annotated[int, msgspec.Meta(ge=1)]
    ramp_up_s: Seconds = 0
    duration_s: Annotated[int, msgspec.Meta(ge=1)]
    files: list[PlanFile] = []
    file_token: str = ""
    """Retired: the API sends none and no engine reads it (every engine reads this topic, so it
    carries no secret; engines fetch files with an engine token of their collection). Kept so
    that older records decode."""
    split_csv: bool = False
    issued_ms: NonNegative
    engine: EngineKind = EngineKind.JMETER
    """What runs the plan; older sidecars ignore the field (and run JMeter)."""
    users: Annotated[int, msgspec.Meta(ge=1)] | None = None
    """The users (threads) of all the plan's engines together, divided among them: engine ``i``
    runs ``users // engine_count``, one more if ``i < users % engine_count``. ``None``:
    ``threads_per_engine`` each."""
    properties: dict[str, str] = {}
    """Properties for this run's engines of the plan (the collection's, the plan's and
    the run's, merged in that order); the sidecar's own ``-J`` settings come first, so these
    win. Older sidecars ignore the field."""
    env: dict[str, str] = {}
    """Environment variables of JMeter's process (the collection's, the plan's and the run's,
    merged in that order). Older sidecars ignore the field."""
    secrets_url: str = ""
    """Where the engines fetch the run's secrets (more properties, over these) with their
    engine token; empty: the collection has none. Never a secret itself."""


class StopEngines(_Message, tag="stop", frozen=True, kw_only=True):
    v: Literal[1] = 1
    command_id: Id
    collection_id: Id
    run_id: Id
    plan_id: Id | None = None
    """``None`` stops every plan of the run."""
    reason: str
    issued_ms: NonNegative


class PurgeEngines(_Message, tag="purge", frozen=True, kw_only=True):
    """Remove the collection's engines (executed by the control plane's scheduler)."""

    v: Literal[1] = 1
    command_id: Id
    collection_id: Id
    reason: str
    issued_ms: NonNegative


Command = StartEngines | StopEngines | PurgeEngines


def decode_command(data: bytes) -> Command:
    command: Command = _decode(data, Command)
    return command


_decoder(Command)
