"""The FastAPI application, built from settings (never at import)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from control.api import context, errors
from control.api.deps import Ctx, Who
from control.api.limits import BodyLimit
from control.api.metrics import RequestCount
from control.api.routes import (
    collections,
    health,
    launches,
    plans,
    projects,
    report_html,
    results,
    runs,
    secrets,
    ui,
)
from control.settings import ApiSettings

log = logging.getLogger(__name__)

#: The API's routers. A request is matched against routes in this order, one by one: what is
#: polled comes first. No two routes match one path (``tests/unit/test_routes.py``), so the
#: order changes nothing else; the OpenAPI document lists its sections in ``TAGS``' order.
ROUTERS = tuple(m.router for m in (runs, results, collections, projects, plans, report_html,
                                   launches, secrets, health))  # fmt: skip
TAGS = ("projects", "plans", "collections", "runs", "engines", "results", "usage", "secrets",
        "health")  # fmt: skip


def create_app(settings: ApiSettings) -> FastAPI:
    registry = CollectorRegistry()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with context.context(settings, registry) as ctx:
            app.state.context = ctx
            yield

    app = FastAPI(title="Shibuya control API", version="0.1.0", lifespan=lifespan,
                  openapi_url=None, docs_url=None, redoc_url=None,
                  openapi_tags=[{"name": t} for t in TAGS])  # fmt: skip
    app.add_middleware(BodyLimit, max_bytes=settings.limits.max_body_bytes,
                       max_file_bytes=settings.files.max_bytes)  # fmt: skip
    app.add_middleware(RequestCount, registry=registry)  # outermost: counts 413s too
    errors.install(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Liveness: the process serves requests. Unauthenticated, for probes."""
        return {"status": "ok"}

    for router in ROUTERS:
        app.include_router(router)
    ui.install(app)
    describe(app, settings.auth.docs)

    @app.get("/readyz", include_in_schema=False)
    async def readyz(ctx: Ctx) -> Response:
        """Readiness: the metadata database answers. Unauthenticated, for probes."""
        try:
            await asyncio.to_thread(ctx.db.ping)
        except Exception as exc:
            log.warning("not ready: %r", exc)
            return Response('{"status":"database unavailable"}', 503, media_type="application/json")
        return Response('{"status":"ready"}', media_type="application/json")

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus metrics of this replica. Unauthenticated, for scrapers."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def describe(app: FastAPI, docs: str) -> None:
    """Serve the OpenAPI document to whom ``AUTH__DOCS`` says (the routes' own checks run
    anyway: the document only tells what exists)."""
    if docs == "off":
        return

    if docs == "public":

        @app.get("/openapi.json", include_in_schema=False)
        async def public_openapi() -> dict[str, Any]:
            return app.openapi()

        @app.get("/docs", include_in_schema=False)
        async def swagger() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title)

        @app.get("/redoc", include_in_schema=False)
        async def redoc() -> HTMLResponse:
            return get_redoc_html(openapi_url="/openapi.json", title=app.title)

        return

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(who: Who) -> dict[str, Any]:
        return app.openapi()
