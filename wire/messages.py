"""Control-plane and metrics messages: small, JSON, versioned.

Every message is a JSON object with ``"kind"`` (which message) and ``"v"`` (its schema version).
A consumer accepts the versions it knows and rejects others with a :class:`DecodeError` naming
the reason; fields it does not know are ignored, so adding an optional field is not a new version.
Times are epoch milliseconds (``*_ms``) or seconds (``*_s``); sizes are bytes.

These travel at human rates (commands, heartbeats) or once per run, plan, label and second
(metrics), so readability wins over compactness here; raw samples use the columnar frame of
:mod:`wire.results`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec

from wire.criteria import CriterionResult
from wire.errors import DecodeError

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^/\s]+$")]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
Seconds = Annotated[int, msgspec.Meta(ge=0)]


class _Message(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    pass


# --- engine status -----------------------------------------------------------------------------


class EngineState(StrEnum):
    IDLE = "idle"  # deployed, waiting for a start command
    PREPARING = "preparing"  # downloading files, splitting data, rewriting the plan
    RUNNING = "running"
    STOPPING = "stopping"
    FINISHED = "finished"  # the engine exited on its own or after a stop, results flushed
    FAILED = "failed"


class EngineStatus(_Message, tag="engine_status", frozen=True, kw_only=True):
    """A heartbeat or state change of one engine, sent by its sidecar."""

    v: Literal[1] = 1
    engine_id: Id
    collection_id: Id
    plan_id: Id
    engine_index: NonNegative
    state: EngineState
    ts_ms: NonNegative
    run_id: Id | None = None
    command_id: Id | None = None
    """The command this status answers, if any."""
    threads: NonNegative = 0
    cpu_cores: float | None = None
    """CPU used by the engine process since the last heartbeat, in cores (1.0 = one core)."""
    memory_bytes: NonNegative | None = None
    samples_published: NonNegative = 0
    malformed_lines: NonNegative = 0
    exit_code: int | None = None
    detail: str = ""
    unpublished_bytes: NonNegative = 0
    """Results the engine wrote that Kafka has not taken yet: an engine that is behind (a
    broker outage) is not lost, and its run's metrics are not complete."""
    exiting: bool = False
    """The sidecar's last heartbeat: it is going away (stopped, purged) and sends no more, so
    the engine is no longer deployed whatever its state says."""


# --- run events ----------------------------------------------------------------------------------


class EngineKind(StrEnum):
    """The load generator a plan runs on (docs/engines.md)."""

    JMETER = "jmeter"
    LOCUST = "locust"
    GATLING = "gatling"


class PlanSpec(msgspec.Struct, frozen=True, kw_only=True):
    plan_id: Id
    engines: Annotated[int, msgspec.Meta(ge=1)]
    threads_per_engine: Annotated[int, msgspec.Meta(ge=1)]
    ramp_up_s: Seconds = 0
    duration_s: Annotated[int, msgspec.Meta(ge=1)]
    engine: EngineKind = EngineKind.JMETER


class RunStarted(_Message, tag="run_started", frozen=True, kw_only=True):
    """The control plane started a run; the run's owner in the stream begins to track it."""

    v: Literal[1] = 1
    run_id: Id
    collection_id: Id
    project_id: Id
    started_ms: NonNegative
    plans: list[PlanSpec]
    thresholds: list[str] = []
    """Pass/fail criteria, in the criteria syntax of docs/criteria.md."""


class RunStopRequested(_Message, tag="run_stop_requested", frozen=True, kw_only=True):
    v: Literal[1] = 1
    run_id: Id
    requested_ms: NonNegative
    reason: str


class RunOutcome(StrEnum):
    FINISHED = "finished"
    ABORTED = "aborted"
    FAILED = "failed"


class RunEnded(_Message, tag="run_ended", frozen=True, kw_only=True):
    """The run's owner in the stream ended the run, once; its final :class:`RunStatus` has the
    verdict of every criterion."""

    v: Literal[1] = 1
    run_id: Id
    ended_ms: NonNegative
    outcome: RunOutcome
    reason: str


RunEvent = RunStarted | RunStopRequested | RunEnded | EngineStatus
"""What travels on ``run-events.v1``: the control plane's run events, the stream's run end, and
the engine statuses of running engines, forwarded there (keyed by run) by the stream."""


class TransitionInfo(msgspec.Struct, frozen=True, kw_only=True):
    at_ms: NonNegative
    state: str
    reason: str


class EngineCounts(msgspec.Struct, frozen=True, kw_only=True):
    expected: NonNegative = 0
    started: NonNegative = 0
    finished: NonNegative = 0
    failed: NonNegative = 0
    lost: NonNegative = 0


class RunStatus(_Message, tag="run_status", frozen=True, kw_only=True):
    """The progress of one run as its owner sees it; the latest per run on the compacted
    ``run-status.v1`` (the operator view: read it without asking a worker)."""

    v: Literal[1] = 1
    run_id: Id
    collection_id: Id
    project_id: Id
    state: str
    """deploying, running, stopping, finished, aborted or failed."""
    updated_ms: NonNegative
    started_ms: NonNegative
    ended_ms: NonNegative | None = None
    engines: EngineCounts
    samples: NonNegative = 0
    failures: NonNegative = 0
    first_second_s: NonNegative | None = None
    last_second_s: NonNegative | None = None
    criteria: list[CriterionResult] = []
    transitions: list[TransitionInfo] = []
    reason: str = ""
    """The reason of the latest transition."""
    samples_missing: NonNegative = 0
    """On the final status: samples the engines said they published that the run did not count
    (they never arrived in time) — a run that lost data says so."""


# --- per-second metrics --------------------------------------------------------------------------


class Histogram(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """A sparse mergeable histogram: ``counts[i]`` values fell in bucket ``buckets[i]``.

    ``scheme`` names the bucket layout (see :data:`HISTOGRAM_SCHEMES`); two histograms merge by
    adding counts of equal buckets, only when their schemes are equal.
    """

    scheme: str
    buckets: list[int]
    counts: list[NonNegative]


#: Bucket layouts. ``log2pct``: bucket 0 holds 0, bucket ``b`` ≥ 1 holds values ``v`` with
#: ``floor(log(v) / log(1.02)) + 1 == b``; its representative value ``1.02 ** (b - 0.5)`` is within
#: 1 % of every value in it.
HISTOGRAM_SCHEMES: Final = frozenset({"log2pct"})
#: The highest ``log2pct`` bucket (1.02 ** 1200 ms: over half a year).
MAX_HISTOGRAM_BUCKET: Final = 1200


class SecondMetrics(_Message, tag="second_metrics", frozen=True, kw_only=True):
    """Final aggregates of one second of sample time, for a label, a plan or a whole run.

    ``plan_id`` and ``label`` are ``None`` on the rows that total over plans or labels.
    Emitted once per window by the run's owner after the grace period.
    """

    v: Literal[1] = 1
    run_id: Id
    plan_id: Id | None
    label: str | None
    second_s: NonNegative
    count: NonNegative
    failures: NonNegative
    codes: dict[str, NonNegative]
    """Samples per response code."""
    bytes_recv: NonNegative
    bytes_sent: NonNegative
    elapsed_min_ms: NonNegative
    elapsed_max_ms: NonNegative
    elapsed_sum_ms: NonNegative
    threads_max: NonNegative
    elapsed: Histogram
    latency: Histogram
    connect: Histogram
    failure_messages: dict[str, NonNegative] = {}
    """Failed samples per failure message (the assertion's, else the response's; at most 200
    characters): they add up to ``failures``. A label keeps its 20 most frequent, the rest
    count under ``(other messages)``."""


class LateMetrics(_Message, tag="late_metrics", frozen=True, kw_only=True):
    """Samples that reached windows already closed, from one partial of the stream.

    ``rows`` are per-second aggregates like :class:`SecondMetrics` (label rows and run-total
    rows). ``source`` (``<partials topic>/<partition>@<offset>``) identifies the partial: a replay
    emits the same rows under the same source, so a sink keyed by it stores them once.
    """

    v: Literal[1] = 1
    run_id: Id
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    rows: list[SecondMetrics]


class MetricsRows(_Message, tag="metrics_rows", frozen=True, kw_only=True):
    """Final rows of one run, closed together (a window's label, plan and run-total rows): one
    Kafka record for many rows, where a run with many labels made one record a row. Each row
    is what a :class:`SecondMetrics` record would have held, in the same order."""

    v: Literal[1] = 1
    run_id: Id
    rows: list[SecondMetrics]


MetricsMessage = SecondMetrics | LateMetrics | MetricsRows
"""What travels on ``metrics.v1``."""


# --- encoding ------------------------------------------------------------------------------------

M = TypeVar("M", bound=msgspec.Struct)

_encoder = msgspec.json.Encoder()
_decoders: dict[object, msgspec.json.Decoder[object]] = {}
_decoders_lock = threading.Lock()


def encode_message(message: msgspec.Struct) -> bytes:
    return _encoder.encode(message)


#: A :class:`MetricsRows` record's size at most (the topic's default limit is 1 MiB).
ROWS_RECORD_BYTES = 512 * 1024


class _EncodedRows(_Message, tag="metrics_rows", frozen=True, kw_only=True):
    """:class:`MetricsRows` with its rows already encoded: the same bytes, each row encoded
    once (to be measured and to be sent)."""

    v: Literal[1] = 1
    run_id: str
    rows: list[msgspec.Raw]


def encode_rows(
    run_id: str, rows: Sequence[SecondMetrics], max_bytes: int = ROWS_RECORD_BYTES
) -> list[bytes]:
    """``rows`` of one run as :class:`MetricsRows` records, in order, each of at most
    ``max_bytes`` (a row bigger than that alone travels alone)."""
    out: list[bytes] = []
    chunk: list[msgspec.Raw] = []
    size = 0
    for row in rows:
        encoded = _encoder.encode(row)
        n = len(encoded) + 1
        if chunk and size + n > max_bytes - 200:  # the envelope's few bytes
            out.append(_encoder.encode(_EncodedRows(run_id=run_id, rows=chunk)))
            chunk, size = [], 0
        chunk.append(msgspec.Raw(encoded))
        size += n
    if chunk:
        out.append(_encoder.encode(_EncodedRows(run_id=run_id, rows=chunk)))
    return out


def decode_message(data: bytes, kind: type[M]) -> M:
    """Decode one message of class ``kind``.

    Raises :class:`DecodeError` naming what is wrong, e.g. an unknown kind, a missing field or an
    unsupported version.
    """
    message: M = _decode(data, kind)
    return message


def decode_run_event(data: bytes) -> RunEvent:
    event: RunEvent = _decode(data, RunEvent)
    return event


def decode_run_status(data: bytes) -> RunStatus:
    return decode_message(data, RunStatus)


def decode_metrics(data: bytes) -> MetricsMessage:
    message: MetricsMessage = _decode(data, MetricsMessage)
    return message


def _decoder(kind: Any) -> msgspec.json.Decoder[Any]:
    """The decoder of ``kind``, built once. Building one walks the type's annotations, and two
    threads building decoders of the same types at once were seen to deadlock inside msgspec
    (the API decodes run statuses on its event loop and in a worker thread): so the known kinds
    are built at import, and any other under a lock."""
    decoder = _decoders.get(kind)
    if decoder is None:
        with _decoders_lock:
            decoder = _decoders.get(kind)
            if decoder is None:
                decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    return decoder


def _decode(data: bytes, kind: Any) -> Any:
    decoder = _decoder(kind)
    try:
        message = decoder.decode(data)
    except msgspec.DecodeError as exc:  # ValidationError is a subclass
        raise DecodeError(_kind_name(kind), str(exc)) from exc
    if isinstance(message, SecondMetrics):
        check_histograms(message)
    elif isinstance(message, LateMetrics | MetricsRows):
        for row in message.rows:
            check_histograms(row)
    return message


def check_histograms(m: SecondMetrics, max_bucket: int = MAX_HISTOGRAM_BUCKET) -> None:
    """Raise :class:`DecodeError` unless the row's histograms are well formed."""
    for name in ("elapsed", "latency", "connect"):
        h: Histogram = getattr(m, name)
        if h.scheme not in HISTOGRAM_SCHEMES:
            raise DecodeError("second_metrics", f"{name}: unknown histogram scheme {h.scheme!r}")
        if len(h.buckets) != len(h.counts):
            raise DecodeError("second_metrics", f"{name}: buckets and counts differ in length")
        if h.buckets and (min(h.buckets) < 0 or max(h.buckets) > max_bucket):
            raise DecodeError("second_metrics", f"{name}: bucket outside 0..{max_bucket}")


def _kind_name(kind: object) -> str:
    return getattr(kind, "__name__", None) or str(kind)


for _kind in (RunEvent, RunStatus, MetricsMessage, EngineStatus, SecondMetrics):
    _decoder(_kind)
