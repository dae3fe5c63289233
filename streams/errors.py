"""Errors of the stream worker, and what to do about each.

::

    StreamError
    ├── TopicSetupError         the worker's topics could not be created or did not appear in
    │                           time (Kafka may be down); retriable: start the worker again
    ├── PartitionMismatchError  topics read together have different partition counts, so a run's
    │                           events and metrics could reach different workers; not retriable:
    │                           add partitions to the smaller (between runs), then start again
    ├── FencedError             another worker owns the partition now (a rebalance): drop what is
    │                           in memory for it; the new owner redoes it from the state record
    └── StateTooLargeError      an agent's state record is over STATE_MAX_BYTES: a bound of the
                                agent's table is wrong (a bug); not retriable — retrying would
                                never commit, so the agent stops and says so

Bytes from a topic that are not a valid message are the wire contract's
:class:`wire.DecodeError`: counted, logged with their position and skipped, never raised out of
an agent.
"""

from __future__ import annotations


class StreamError(Exception):
    retriable = False


class TopicSetupError(StreamError):
    retriable = True


class PartitionMismatchError(StreamError):
    pass


class FencedError(StreamError):
    pass


class StateTooLargeError(StreamError):
    pass
