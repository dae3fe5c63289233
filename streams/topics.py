"""The topics a worker reads and writes, declared on the Faust app."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from streams.errors import PartitionMismatchError
from streams.kafka_admin import TopicSpec
from streams.settings import WorkerSettings
from wire import Topic, Topics

#: The wire topics a worker reads or writes: it creates them (if missing) before it subscribes.
OWNED = (
    Topic.RESULTS,
    Topic.PARTIALS,
    Topic.METRICS,
    Topic.RUN_EVENTS,
    Topic.ENGINE_STATUS,
    Topic.COMMANDS,
)
#: Agents with a state record per input partition (:mod:`streams.ledger`).
AGENTS = ("aggregate", "merge", "runs", "deployments")

COMPACTED = {
    "cleanup.policy": "compact",
    "min.cleanable.dirty.ratio": "0.1",
    "segment.ms": "600000",
}
#: The largest state record a ledger writes (:class:`streams.ledger.Ledger` refuses more); the
#: state topics take it uncompressed, with room for the batch's overhead.
STATE_MAX_BYTES = 8 << 20
STATE = {**COMPACTED, "max.message.bytes": str(STATE_MAX_BYTES + (64 << 10))}
#: Provisional rows matter for seconds only: kept two minutes (up to three: a segment is deleted
#: whole), which is also what an API replica reads when it starts.
SHORT_LIVED = {"retention.ms": "120000", "segment.ms": "60000"}


def state_topic(app_id: str, agent: str) -> str:
    """The compacted topic of an agent's per-partition state records (:mod:`streams.ledger`)."""
    return f"{app_id}-{agent}-state"


def owned_specs(settings: WorkerSettings) -> list[TopicSpec]:
    k = settings.kafka
    specs = [TopicSpec(k.topics[t], k.partitions, k.replication) for t in OWNED]
    specs.append(TopicSpec(k.topics.run_status, k.partitions, k.replication, COMPACTED))
    specs.append(TopicSpec(k.topics.live, k.partitions, k.replication, SHORT_LIVED))
    specs += [
        TopicSpec(state_topic(settings.app_id, agent), k.partitions, k.replication, STATE)
        for agent in AGENTS
    ]
    return specs


#: Topics an agent reads together: Faust assigns partition *p* of each to one worker only when
#: they have as many partitions (streams/agents/owner.py).
READ_TOGETHER = ((Topic.RUN_EVENTS, Topic.METRICS), (Topic.ENGINE_STATUS, Topic.COMMANDS))


def check_copartitioned(partitions: dict[str, int], topics: Topics) -> None:
    """Raise :class:`PartitionMismatchError` unless the topics read together have as many
    partitions as each other — else a run's events and its metrics could reach different
    workers, and neither would see the whole run."""
    for group in READ_TOGETHER:
        names = [topics[t] for t in group]
        counts = {n: partitions[n] for n in names}
        if len(set(counts.values())) > 1:
            listed = ", ".join(f"{n} has {c}" for n, c in counts.items())
            raise PartitionMismatchError(
                f"topics read together need as many partitions each: {listed}; add partitions "
                f"to the smaller (kafka-topics.sh --alter --partitions N) — keys then move, so do "
                f"it between runs"
            )


@dataclass(frozen=True)
class FaustTopics:
    """The topics the agents read, declared on the app, and the names of those they write."""

    results: faust.TopicT
    partials: faust.TopicT
    metrics: faust.TopicT
    runs_source: faust.TopicT
    """Run events and final metrics (both keyed by run): what the runs agent reads."""
    deployments_source: faust.TopicT
    """Engine statuses and commands (both keyed by collection): what the deployments agent
    reads."""
    run_events: str
    run_status: str
    commands: str
    live: str


def declare(app: faust.App, settings: WorkerSettings) -> FaustTopics:
    """Declare the topics on the app (they exist already: :func:`owned_specs`)."""
    k = settings.kafka

    def raw(*topics: Topic) -> faust.TopicT:
        return app.topic(
            *(k.topics[t] for t in topics),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=k.partitions,
            replicas=k.replication,
        )

    return FaustTopics(
        results=raw(Topic.RESULTS),
        partials=raw(Topic.PARTIALS),
        metrics=raw(Topic.METRICS),
        runs_source=raw(Topic.RUN_EVENTS, Topic.METRICS),
        deployments_source=raw(Topic.ENGINE_STATUS, Topic.COMMANDS),
        run_events=k.topics.run_events,
        run_status=k.topics.run_status,
        commands=k.topics.commands,
        live=k.topics.live,
    )
