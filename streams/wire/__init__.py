"""The wire contract: topic names, key formats and versioned message schemas.

The one module that the sidecar, the stream workers and the control plane all import. It does
no I/O and imports no framework (enforced by import-linter); golden files in ``tests/golden/``
pin every format. docs/wire-format.md describes each message and why it is encoded as it is.
"""

from streams.wire.errors import DecodeError, WireError
from streams.wire.messages import (
    HISTOGRAM_SCHEMES,
    Command,
    EngineState,
    EngineStatus,
    Histogram,
    PlanFile,
    PlanSpec,
    PurgeEngines,
    RunEnded,
    RunEvent,
    RunOutcome,
    RunStarted,
    RunStopRequested,
    SecondMetrics,
    StartEngines,
    StopEngines,
    decode_command,
    decode_message,
    decode_run_event,
    encode_message,
)
from streams.wire.results import (
    BYTES_PER_SAMPLE,
    COLUMNS,
    BatchBuilder,
    ResultBatch,
    decode_batch,
    encode_batch,
)
from streams.wire.topics import (
    DEFAULT_PREFIX,
    Topic,
    collection_key,
    parse_result_key,
    result_key,
    run_key,
    topic_name,
)

__all__ = [
    "BYTES_PER_SAMPLE",
    "COLUMNS",
    "DEFAULT_PREFIX",
    "HISTOGRAM_SCHEMES",
    "BatchBuilder",
    "Command",
    "DecodeError",
    "EngineState",
    "EngineStatus",
    "Histogram",
    "PlanFile",
    "PlanSpec",
    "PurgeEngines",
    "ResultBatch",
    "RunEnded",
    "RunEvent",
    "RunOutcome",
    "RunStarted",
    "RunStopRequested",
    "SecondMetrics",
    "StartEngines",
    "StopEngines",
    "Topic",
    "WireError",
    "collection_key",
    "decode_batch",
    "decode_command",
    "decode_message",
    "decode_run_event",
    "encode_batch",
    "encode_message",
    "parse_result_key",
    "result_key",
    "run_key",
    "topic_name",
]
