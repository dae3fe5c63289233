"""The FastAPI application, built from settings (never at import)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import Engine, text

from control.api import errors
from control.api.routes import collections, launches, plans, projects, results, runs
from control.auth import KnownCallers
from control.db import store as db
from control.events import Publisher, PurgeExecutor, RunOutcomes
from control.files.storage import LocalFiles
from control.results.recent import Recent, RecentResults
from control.results.sink import Sink
from control.results.store import Store
from control.schedulers import External, Scheduler
from control.schedulers.local import LocalScheduler
from control.settings import ApiSettings

log = logging.getLogger(__name__)


def create_app(settings: ApiSettings) -> FastAPI:
    registry = CollectorRegistry()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # This process owns ClickHouse (the embedded engine admits one process): it stores
        # the stream's rows (the sink) and answers the queries.
        engine = db.open_engine(settings.database_url)
        await asyncio.to_thread(db.migrate, engine)
        app.state.engine = engine
        app.state.sessions = db.sessions(engine)
        app.state.files = LocalFiles(settings.files_dir)
        app.state.publisher = Publisher(settings.kafka.bootstrap, settings.kafka.topic_prefix)
        app.state.scheduler = scheduler = make_scheduler(settings)
        followers = [
            RunOutcomes(settings.kafka.bootstrap, settings.kafka.topic_prefix,
                        settings.runs_group_id, app.state.sessions),
            PurgeExecutor(settings.kafka.bootstrap, settings.kafka.topic_prefix,
                          settings.commands_group_id, app.state.sessions, scheduler),
        ]  # fmt: skip
        follower_tasks = [asyncio.create_task(f.run()) for f in followers]
        store = await asyncio.to_thread(Store.open, settings.clickhouse_dsn)
        app.state.results = RecentResults(store, settings.results_cache_s)
        app.state.answers = Recent(settings.results_cache_s)
        sink: Sink | None = None
        task: asyncio.Task[None] | None = None
        if settings.sink.enabled:
            sink = Sink(
                store,
                settings.kafka.bootstrap,
                topic_prefix=settings.kafka.topic_prefix,
                group_id=settings.sink.group_id,
                raw_samples=settings.sink.raw_samples,
                registry=registry,
            )
            task = asyncio.create_task(_keep_running(sink))
        try:
            yield
        finally:
            if sink is not None and task is not None:
                sink.stop()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, timeout=15)
            for f in followers:
                f.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*follower_tasks), timeout=10)
            await app.state.publisher.close()
            await asyncio.to_thread(store.close)
            engine.dispose()

    app = FastAPI(title="Shibuya control API", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.callers = KnownCallers(settings.auth.cache_s)
    app.state.registry = registry
    errors.install(app)
    app.include_router(projects.router)
    app.include_router(plans.router)
    app.include_router(collections.router)
    app.include_router(runs.router)
    app.include_router(results.router)
    app.include_router(launches.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Liveness: the process serves requests. Unauthenticated, for probes."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        """Readiness: the metadata database answers. Unauthenticated, for probes."""
        try:
            await asyncio.to_thread(_ping, app.state.engine)
        except Exception as exc:
            log.warning("not ready: %r", exc)
            return Response('{"status":"database unavailable"}', 503, media_type="application/json")
        return Response('{"status":"ready"}', media_type="application/json")

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus metrics of this replica. Unauthenticated, for scrapers."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _ping(engine: Engine) -> None:
    with engine.connect() as c:
        c.execute(text("SELECT 1"))


async def _keep_running(sink: Sink) -> None:
    """Run the sink; while Kafka is unreachable, try again every few seconds."""
    while not sink.stopping():
        try:
            await sink.run()
        except Exception as exc:  # the broker may be down or not created yet
            log.warning("ClickHouse sink stopped (%r); restarting in 5 s", exc)
            for _ in range(50):
                if sink.stopping():
                    return
                await asyncio.sleep(0.1)


def make_scheduler(settings: ApiSettings) -> Scheduler:
    if settings.scheduler.kind == "external":
        return External()
    if settings.scheduler.kind == "kubernetes":
        from control.schedulers.kube import KubernetesScheduler  # the client loads slowly

        return KubernetesScheduler(settings.scheduler.kubernetes,
                                   bootstrap=settings.kafka.bootstrap,
                                   topic_prefix=settings.kafka.topic_prefix,
                                   env=settings.scheduler.sidecar_env)  # fmt: skip
    return LocalScheduler(settings.engines_dir, bootstrap=settings.kafka.bootstrap,
                          topic_prefix=settings.kafka.topic_prefix,
                          env=settings.scheduler.sidecar_env)  # fmt: skip
