"""What every request may use, built once by the app's lifespan and closed with it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from control.db.database import Database
from control.db.models import Collection, Run
from control.errors import SchedulerError
from control.files.storage import FileStorage, LocalFiles
from control.kafka import Producer
from control.results.clickhouse import Store
from control.results.recent import Recent, RecentResults
from control.results.sink import Sink
from control.schedulers import External, Scheduler, sandbox
from control.services import access
from control.services.access import Owned
from control.services.auth import KnownCallers
from control.services.followers import clickhouse_sink, purge_executor, run_outcomes
from control.services.live import LiveRows, live_follower
from control.services.oidc import Provider
from control.services.runs import Launcher
from control.settings import ApiSettings
from control.vault import Vault

log = logging.getLogger(__name__)


def status_key(collection_id: int) -> tuple[str, int]:
    """The key of a collection's shared status in :attr:`Context.answers`: dropped when its
    engines change (a deploy, a purge, a run's start), so the next poll sees them."""
    return ("status", collection_id)


@dataclass(frozen=True)
class Context:
    """The replica's resources; routes take it as :data:`control.api.deps.Ctx`."""

    settings: ApiSettings
    db: Database
    files: FileStorage
    producer: Producer
    scheduler: Scheduler
    results: RecentResults
    """ClickHouse reads, each answer shared for ``results_cache_s``."""
    answers: Recent
    """Whole JSON answers shared for ``results_cache_s`` (:func:`control.api.deps.shared_json`),
    the previous one served while the next is made."""
    callers: KnownCallers
    runs: Owned[str, Run]
    """Runs' rows and owners for reads, each read once per ``results_cache_s``."""
    collections: Owned[int, Collection]
    """Collections' likewise."""
    registry: CollectorRegistry
    vault: Vault
    """Seals and opens collections' secrets."""
    oidc: Provider
    """The web UI's single sign-on (``enabled`` when configured)."""
    live: LiveRows
    """Running runs' open seconds, for the live streams."""

    @property
    def launcher(self) -> Launcher:
        s = self.settings
        return Launcher(self.producer, self.scheduler, s.limits, s.kafka.topics, s.base_url)


@contextlib.asynccontextmanager
async def context(settings: ApiSettings, registry: CollectorRegistry) -> AsyncIterator[Context]:
    """Open everything a replica needs, start its followers (runs' ends, purges, live rows, and
    the ClickHouse sink where this process runs it), and close it all in reverse order."""
    async with contextlib.AsyncExitStack() as stack:
        db = Database(settings.database_url)
        stack.callback(db.close)
        await asyncio.to_thread(db.migrate)
        # This process owns ClickHouse (the embedded engine admits one process): it stores the
        # stream's rows (the sink) and answers the queries.
        store = await asyncio.to_thread(Store.open, settings.clickhouse_dsn)
        stack.push_async_callback(asyncio.to_thread, store.close)
        producer = Producer(settings.kafka)
        stack.push_async_callback(producer.close)
        scheduler = make_scheduler(settings)
        live = LiveRows()
        answers = Recent(settings.results_cache_s, serve_stale=True)

        def purged(collection_id: int) -> None:  # the status made before is not served again
            answers.forget(status_key(collection_id))

        followers = [
            run_outcomes(settings.kafka, settings.runs_group_id, db.sessions),
            purge_executor(settings.kafka, settings.commands_group_id, db.sessions, scheduler,
                           purged),
            live_follower(settings.kafka, live),
        ]  # fmt: skip
        if settings.sink.enabled:
            sink = Sink(store, settings.kafka.topics, raw_samples=settings.sink.raw_samples,
                        registry=registry)  # fmt: skip
            followers.append(clickhouse_sink(settings.kafka, settings.sink.group_id, sink))
        tasks = [asyncio.create_task(f.run(), name=f.name) for f in followers]

        async def stop_following() -> None:
            for f in followers:
                f.stop()
            # A follower stops between batches; one waiting on a Kafka that is away is cancelled
            # (what it had not committed is re-delivered to a replica later).
            _, pending = await asyncio.wait(tasks, timeout=5)
            for task in pending:
                log.warning("%s did not stop in time; cancelled", task.get_name())
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)

        stack.push_async_callback(stop_following)
        yield Context(
            settings=settings, db=db, files=LocalFiles(settings.files_dir), producer=producer,
            scheduler=scheduler, results=RecentResults(store, settings.results_cache_s),
            answers=answers,
            callers=KnownCallers(settings.auth.cache_s),
            runs=access.runs(db, settings.results_cache_s),
            collections=access.collections(db, settings.results_cache_s), registry=registry,
            vault=vault(settings),
            oidc=Provider(settings.oidc), live=live,
        )  # fmt: skip


def vault(settings: ApiSettings) -> Vault:
    key = settings.secrets.key
    return Vault.open_with(key.get_secret_value() if key else None, settings.data_dir)


def make_scheduler(settings: ApiSettings) -> Scheduler:
    if settings.scheduler.kind == "external":
        return External()
    if settings.scheduler.kind == "kubernetes":
        from control.schedulers.kube import KubernetesScheduler  # the client loads slowly

        return KubernetesScheduler(settings.scheduler.kubernetes, kafka=settings.kafka,
                                   env=settings.scheduler.sidecar_env)  # fmt: skip
    from control.schedulers.local import LocalScheduler

    s = settings.scheduler
    cache = Path(os.environ.get("SHIBUYA_CACHE_DIR") or Path.home() / ".cache" / "shibuya")
    return LocalScheduler(settings.engines_dir, kafka=settings.kafka,
                          jmeter_home=s.jmeter_home or cache / "jmeter-5.6.3-plugins-1",
                          locust_env=s.locust_env or cache / "locust-2.47.0",
                          gatling_home=s.gatling_home or cache / "gatling-3.15.1-launcher-3",
                          env=s.sidecar_env, drain_s=s.drain_s,
                          bwrap=local_sandbox(settings))  # fmt: skip


def local_sandbox(settings: ApiSettings) -> str | None:
    """The bubblewrap program the local scheduler's engines run under; ``None`` when they run
    without a sandbox, which an API with authentication allows only if told it has one tenant.
    Raises :class:`SchedulerError` with what to do otherwise."""
    s = settings.scheduler
    bwrap = sandbox.available() if s.sandbox != "none" else None
    if s.sandbox == "bwrap" and bwrap is None:
        raise SchedulerError("SCHEDULER__SANDBOX=bwrap, but bubblewrap is not installed "
                             "(apt-get install bubblewrap)")  # fmt: skip
    if bwrap is None and settings.auth.mode == "tokens" and not s.single_tenant:
        raise SchedulerError(
            "the local scheduler runs every user's test plan — code — on this machine, and "
            "without a sandbox a plan can read other groups' plans and the API's data. Install "
            "bubblewrap (apt-get install bubblewrap), or, if every user of this API may run code "
            "as its user, set SHIBUYA_API_SCHEDULER__SINGLE_TENANT=true (docs/schedulers.md)"
        )
    return bwrap
