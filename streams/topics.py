"""The topics a worker reads and writes, declared on the Faust app."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from streams.kafka_admin import TopicSpec
from streams.settings import WorkerSettings
from streams.wire import Topic, topic_name

#: The topics this worker owns: it creates them before it subscribes.
OWNED = (Topic.RESULTS,)


def owned_specs(settings: WorkerSettings) -> list[TopicSpec]:
    k = settings.kafka
    return [TopicSpec(topic_name(t, k.topic_prefix), k.partitions, k.replication) for t in OWNED]


@dataclass(frozen=True)
class Topics:
    results: faust.TopicT


def declare(app: faust.App, settings: WorkerSettings) -> Topics:
    """Declare the topics on the app (they exist already: :func:`owned_specs`)."""
    k = settings.kafka
    return Topics(
        results=app.topic(
            topic_name(Topic.RESULTS, k.topic_prefix),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=k.partitions,
            replicas=k.replication,
        ),
    )
