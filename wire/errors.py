"""Errors of the wire contract.

::

    WireError                 a value cannot be put on the wire (invalid id, prefix …)
    └── DecodeError           bytes from the wire are not a valid message; never retriable:
                              count it, report ``reason`` and move on to the next message
"""

from __future__ import annotations


class WireError(ValueError):
    """A value does not fit the wire contract."""


class DecodeError(WireError):
    """Bytes read from a topic are not a valid message of the expected kind and version."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"cannot decode {kind}: {reason}")
        self.kind = kind
        self.reason = reason
