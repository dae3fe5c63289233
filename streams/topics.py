"""The topics a worker reads and writes, declared on the Faust app."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from streams.kafka_admin import TopicSpec
from streams.settings import WorkerSettings
from streams.wire import Topic, topic_name

#: The wire topics this worker owns: it creates them before it subscribes.
OWNED = (Topic.RESULTS, Topic.PARTIALS, Topic.METRICS)

COMPACTED = {
    "cleanup.policy": "compact",
    "min.cleanable.dirty.ratio": "0.1",
    "segment.ms": "600000",
}


def state_topic(app_id: str, agent: str) -> str:
    """The compacted topic of an agent's per-partition state records (:mod:`streams.ledger`)."""
    return f"{app_id}-{agent}-state"


def owned_specs(settings: WorkerSettings) -> list[TopicSpec]:
    k = settings.kafka
    specs = [TopicSpec(topic_name(t, k.topic_prefix), k.partitions, k.replication) for t in OWNED]
    specs += [
        TopicSpec(state_topic(settings.app_id, agent), k.partitions, k.replication, COMPACTED)
        for agent in ("aggregate", "merge")
    ]
    return specs


@dataclass(frozen=True)
class Topics:
    results: faust.TopicT
    partials: faust.TopicT
    metrics: faust.TopicT
    aggregate_state: str
    merge_state: str


def declare(app: faust.App, settings: WorkerSettings) -> Topics:
    """Declare the topics on the app (they exist already: :func:`owned_specs`)."""
    k = settings.kafka

    def raw(topic: Topic) -> faust.TopicT:
        return app.topic(
            topic_name(topic, k.topic_prefix),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=k.partitions,
            replicas=k.replication,
        )

    return Topics(
        results=raw(Topic.RESULTS),
        partials=raw(Topic.PARTIALS),
        metrics=raw(Topic.METRICS),
        aggregate_state=state_topic(settings.app_id, "aggregate"),
        merge_state=state_topic(settings.app_id, "merge"),
    )
