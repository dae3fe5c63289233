"""The topics a worker reads and writes, declared on the Faust app."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from streams.settings import WorkerSettings
from streams.wire import Topic, topic_name


@dataclass(frozen=True)
class Topics:
    results: faust.TopicT


def declare(app: faust.App, settings: WorkerSettings) -> Topics:
    """Declare the topics; Faust creates missing ones at start-up with these partition counts.

    Topics of other owners are not created here (engine status and commands: the control plane).
    """
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
            internal=True,  # the stream owns the pipeline's topics: Faust creates them
        ),
    )
