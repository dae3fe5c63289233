"""The FastAPI application, built from settings (never at import)."""

from __future__ import annotations

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from control.settings import ApiSettings


def create_app(settings: ApiSettings) -> FastAPI:
    registry = CollectorRegistry()
    app = FastAPI(title="Shibuya control API", version="0.1.0")
    app.state.settings = settings
    app.state.registry = registry

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Liveness: the process serves requests. Unauthenticated, for probes."""
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus metrics of this replica. Unauthenticated, for scrapers."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
