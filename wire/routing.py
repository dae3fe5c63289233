"""Topic names and key formats: how every message finds its partition.

Partitioning is the design (docs/architecture.md):

* raw results are keyed by run *and engine*, so one big run spreads over every partition;
* run events, partials, per-second metrics and run status are keyed by run, so exactly one worker
  owns a run;
* commands and engine status are keyed by collection, the unit that is deployed and purged.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from wire.errors import WireError

DEFAULT_PREFIX = "shibuya"

#: The separator inside composite keys; identifiers must not contain it.
KEY_SEPARATOR = "/"


class Topic(StrEnum):
    """Topic base names. The suffix is the major schema version of what travels on it."""

    RESULTS = "results.v1"
    """Raw result batches from engine sidecars. Key: :func:`result_key`."""
    ENGINE_STATUS = "engine-status.v1"
    """Engine heartbeats and state changes. Key: :func:`collection_key`."""
    RUN_EVENTS = "run-events.v1"
    """Run started / stop requested / ended, and the statuses of engines in a run (forwarded by
    the stream). Key: :func:`run_key`."""
    RUN_STATUS = "run-status.v1"
    """The latest progress of every run (compacted). Key: :func:`run_key`."""
    COMMANDS = "commands.v1"
    """Start, stop and purge commands for engines and the scheduler. Key: :func:`collection_key`."""
    PARTIALS = "partials.v1"
    """Partial aggregates per run from each results partition, and window-close markers; internal
    to the stream workers (:mod:`streams.merge`). Key: :func:`run_key`."""
    METRICS = "metrics.v1"
    """Final per-second metrics per run, plan and label, and late rows; written in Kafka
    transactions (read them ``read_committed``). Key: :func:`run_key`."""
    LIVE = "live.v1"
    """Provisional rows of runs' open seconds for live views (:mod:`wire.live`), short-lived.
    Key: :func:`run_key`."""


def topic_name(topic: Topic, prefix: str = DEFAULT_PREFIX) -> str:
    """The full topic name, e.g. ``shibuya.results.v1``.

    A prefix lets several installations (or tests) share one Kafka cluster.
    """
    if not prefix or any(c not in _TOPIC_CHARS for c in prefix):
        raise WireError(f"invalid topic prefix {prefix!r}: use letters, digits, '.', '_' and '-'")
    return f"{prefix}.{topic.value}"


_TOPIC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


@dataclass(frozen=True)
class Topics:
    """The full topic names of one installation: ``Topics("shibuya").results`` is
    ``shibuya.results.v1``. Each deployable's Kafka settings hand one out (``settings.kafka
    .topics``), so a prefix travels with its names instead of beside them."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        topic_name(Topic.RESULTS, self.prefix)  # refuse a bad prefix at once

    def __getitem__(self, topic: Topic) -> str:
        return topic_name(topic, self.prefix)

    @property
    def results(self) -> str:
        return self[Topic.RESULTS]

    @property
    def engine_status(self) -> str:
        return self[Topic.ENGINE_STATUS]

    @property
    def run_events(self) -> str:
        return self[Topic.RUN_EVENTS]

    @property
    def run_status(self) -> str:
        return self[Topic.RUN_STATUS]

    @property
    def commands(self) -> str:
        return self[Topic.COMMANDS]

    @property
    def partials(self) -> str:
        return self[Topic.PARTIALS]

    @property
    def metrics(self) -> str:
        return self[Topic.METRICS]

    @property
    def live(self) -> str:
        return self[Topic.LIVE]


def check_id(kind: str, value: str) -> str:
    """Return ``value`` if it can be part of a key; raise :class:`WireError` otherwise."""
    if not value or KEY_SEPARATOR in value or len(value) > 200 or not value.isprintable():
        raise WireError(
            f"invalid {kind} {value!r}: 1-200 printable characters without {KEY_SEPARATOR!r}"
        )
    return value


def run_key(run_id: str) -> bytes:
    return check_id("run id", run_id).encode()


def collection_key(collection_id: str) -> bytes:
    return check_id("collection id", collection_id).encode()


def result_key(run_id: str, engine_id: str) -> bytes:
    """``<run>/<engine>``: spreads a run's engines over partitions, keeps each engine in order."""
    return f"{check_id('run id', run_id)}{KEY_SEPARATOR}{check_id('engine id', engine_id)}".encode()


def parse_result_key(key: bytes) -> tuple[str, str]:
    """Inverse of :func:`result_key`."""
    try:
        run_id, engine_id = key.decode().split(KEY_SEPARATOR)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError(f"malformed result key {key!r}: expected b'<run>/<engine>'") from exc
    return check_id("run id", run_id), check_id("engine id", engine_id)
