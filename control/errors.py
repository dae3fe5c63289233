"""Errors of the control plane: what services and adapters raise, and what each means to a caller.

::

    ControlError
    ├── NotFoundError          it does not exist, or it is not the caller's: ids of other
    │                          groups' things are not disclosed
    ├── UnauthenticatedError   no credentials, or unknown or revoked ones
    ├── ForbiddenError         the caller may not do this
    ├── ConflictError          the state forbids it now (a run in progress, engines deployed …):
    │   │                      change that state, then retry
    │   └── ConstraintError    a database constraint refused a write: it exists already, or it
    │                          is in use
    ├── InvalidError           the input is wrong; ``problems`` lists every problem with where
    ├── TooLargeError          a body or a file over its limit
    ├── UnsupportedError       a kind of file a plan does not take
    ├── UnavailableError       a dependency (Kafka, ClickHouse) did not answer or did not take
    │                          what was sent; retriable
    ├── RejectedError          ClickHouse refused a row (a value out of its column's range): the
    │                          same row will be refused again
    └── SchedulerError         the engine scheduler failed; retriable: deploy and purge are
                               idempotent

The API answers each with one status and one stable code, in one handler
(:mod:`control.api.errors`); the CLI and the web UI read that code, never the message.
"""

from __future__ import annotations

from typing import Any


class ControlError(Exception):
    retriable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(ControlError):
    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")


class UnauthenticatedError(ControlError):
    pass


class ForbiddenError(ControlError):
    pass


class ConflictError(ControlError):
    pass


class ConstraintError(ConflictError):
    def __init__(self, detail: object = None) -> None:
        super().__init__("refused by a constraint: it exists already or is in use")
        self.detail = detail


class InvalidError(ControlError):
    def __init__(self, message: str, problems: Any = None) -> None:
        super().__init__(message)
        self.problems = problems


class TooLargeError(ControlError):
    pass


class UnsupportedError(ControlError):
    pass


class UnavailableError(ControlError):
    retriable = True


class RejectedError(ControlError):
    pass


class SchedulerError(ControlError):
    """The backend could not do what was asked; the message says what and why."""

    retriable = True
