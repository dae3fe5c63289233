"""Loaded into Locust beside the plan's locustfile (``-f plan.py,locust_results.py``): every
request Locust reports becomes one line of a JMeter CSV results file, which the sidecar tails
as it tails JMeter's.

Locust's own CSV output is aggregated; its ``request`` event fires once per request, in the
process that made it, with what a sample needs: the start time (epoch seconds), the response
time (ms, a float: rounded to whole ms as JMeter's), the name, the response (its status code)
and the exception (a failure, its text the failure message). Each line is flushed as it is
written, and the file is closed when the process exits, not on Locust's ``quitting`` event:
requests that end during the stop timeout come after it.

Standard library and Locust only: this file runs in Locust's own environment, not the sidecar's.
The results file is ``SHIBUYA_LOCUST_RESULTS`` (set by the sidecar).
"""

from __future__ import annotations

import atexit
import csv
import os
import time
from typing import Any

from locust import events  # type: ignore[import-not-found]

COLUMNS = ("timeStamp", "elapsed", "label", "responseCode", "responseMessage", "success",
           "failureMessage", "bytes", "grpThreads", "allThreads", "URL")  # fmt: skip


class _Results:
    """The results file, and the environment whose runner counts the users."""

    def __init__(self, path: str, environment: Any) -> None:
        self._file = open(path, "a", newline="", encoding="utf-8")  # noqa: SIM115 - closed at exit
        self._csv = csv.writer(self._file, lineterminator="\n")
        if self._file.tell() == 0:
            self.write(COLUMNS)
        self.environment = environment
        atexit.register(self._file.close)

    def write(self, row: tuple[Any, ...]) -> None:
        self._csv.writerow(row)
        self._file.flush()

    def users(self) -> int:
        runner = self.environment.runner
        return int(runner.user_count) if runner is not None else 0


_results: _Results | None = None


def _open(environment: Any, **_: Any) -> None:
    global _results
    _results = _Results(os.environ["SHIBUYA_LOCUST_RESULTS"], environment)


def _request(
    request_type: str, name: str, response_time: float | None, response_length: int | None,
    response: Any = None, exception: BaseException | None = None, start_time: float | None = None,
    url: str | None = None, **_: Any,
) -> None:  # fmt: skip
    if _results is None:
        return
    elapsed = round(response_time or 0)
    started_ms = round(start_time * 1000) if start_time else round(time.time() * 1000) - elapsed
    failed = exception is not None
    # No response (a connection refused): the exception's class, as JMeter's "Non HTTP" codes.
    code = getattr(response, "status_code", None) or (type(exception).__name__ if failed else "")
    reason = getattr(response, "reason", None) or ""
    failure = f"{type(exception).__name__}: {exception}" if failed else ""
    users = _results.users()
    _results.write(
        (
            started_ms,
            elapsed,
            name,
            code,
            reason,
            "false" if failed else "true",
            failure,
            response_length or 0,
            users,
            users,
            url or request_type,
        )
    )


events.init.add_listener(_open)
events.request.add_listener(_request)
