"""What the control plane tells the stream and the engines over Kafka: run events
(``run-events.v1``, keyed by run) and engine commands (``commands.v1``, keyed by collection), as
records for the :class:`~control.kafka.Producer`. Every command has an id, so a retried send has
no second effect."""

from __future__ import annotations

import msgspec

from control.kafka import Outgoing
from wire import Topics, collection_key, encode_message, run_key


def run_event(topics: Topics, run_id: str, message: msgspec.Struct) -> Outgoing:
    return Outgoing(topics.run_events, run_key(run_id), encode_message(message))


def command(topics: Topics, collection_id: str, message: msgspec.Struct) -> Outgoing:
    return Outgoing(topics.commands, collection_key(collection_id), encode_message(message))
