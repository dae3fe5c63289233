"""Requests counted per method, route template and status (``shibuya_api_requests_total``), and
timed per method and route (``shibuya_api_request_duration_seconds``: from the app's receiving
the request to its answer's last byte handed to the server; a live stream's, its whole length).

The route is the template (``/api/plans/{plan_id}``), never the path, so ids do not grow the
series; a path no route matches counts as ``unmatched``.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Seconds: fine below 50 ms, where an API that keeps its promises answers.
BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RequestCount:
    def __init__(self, app: ASGIApp, *, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter("shibuya_api_requests", "requests answered, by route and status",
                                ["method", "route", "code"], registry=registry)  # fmt: skip
        self.duration = Histogram(
            "shibuya_api_request_duration_seconds", "time to answer, by route",
            ["method", "route"], buckets=BUCKETS, registry=registry,
        )  # fmt: skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status, started = 500, time.perf_counter()

        async def seen(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, seen)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.requests.labels(scope["method"], route, str(status)).inc()
            self.duration.labels(scope["method"], route).observe(time.perf_counter() - started)
