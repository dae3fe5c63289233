"""Entry point of the control API: settings → app → uvicorn."""

from __future__ import annotations

import uvicorn

from control.api.app import create_app
from control.settings import ApiSettings


def serve(settings: ApiSettings) -> None:
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
