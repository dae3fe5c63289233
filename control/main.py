"""Entry point of the control API: settings → app → uvicorn."""

from __future__ import annotations

import sys

import uvicorn

from control.api.app import create_app
from control.api.context import local_sandbox
from control.settings import ApiSettings

#: One format for the API's own records, uvicorn's and its access log: time, level, logger,
#: message. Without it the API's INFO records went nowhere and its warnings came bare; and
#: uvicorn's own access formatter copies each record and looks its status's phrase up, a tenth
#: of the CPU of a polled report.
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain",
                            "stream": "ext://sys.stderr"}},
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {**{name: {"level": "INFO", "handlers": [], "propagate": True}
                   for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
                "aiokafka": {"level": "WARNING"}},  # not every subscription and rebalance
}  # fmt: skip


def serve(settings: ApiSettings) -> None:
    """Serve until SIGTERM; a configuration that cannot be served is refused first (raises
    :class:`control.errors.SchedulerError` with what to do)."""
    if settings.scheduler.kind == "local":
        local_sandbox(settings)
    settings.make_private_dirs()
    # Requests hop between the event loop and worker threads (database, ClickHouse); with the
    # default 5 ms GIL switch interval each hop can wait that long for the GIL.
    sys.setswitchinterval(0.0005)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=LOG_CONFIG)
