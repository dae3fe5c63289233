"""Entry point of the control API: settings → app → uvicorn."""

from __future__ import annotations

import sys

import uvicorn

from control.api.app import create_app
from control.api.context import local_sandbox
from control.settings import ApiSettings


def serve(settings: ApiSettings) -> None:
    """Serve until SIGTERM; a configuration that cannot be served is refused first (raises
    :class:`control.errors.SchedulerError` with what to do)."""
    if settings.scheduler.kind == "local":
        local_sandbox(settings)
    settings.make_private_dirs()
    # Requests hop between the event loop and worker threads (database, ClickHouse); with the
    # default 5 ms GIL switch interval each hop can wait that long for the GIL.
    sys.setswitchinterval(0.0005)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
