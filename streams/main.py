"""Entry point of a stream worker: settings → app → Faust worker, until SIGTERM."""

from __future__ import annotations

import asyncio
import logging

from faust.worker import Worker as FaustWorker

from streams.kafka_admin import ensure_topics
from streams.prom import serve
from streams.settings import WorkerSettings
from streams.topics import check_copartitioned, owned_specs
from streams.worker import create_worker

log = logging.getLogger(__name__)


def run(settings: WorkerSettings) -> None:
    partitions = asyncio.run(ensure_topics(settings.kafka.access, owned_specs(settings)))
    check_copartitioned(partitions, settings.kafka.topics)
    results = settings.kafka.topics.results
    if partitions[results] != settings.kafka.partitions:
        # Tables must have as many partitions as the topic they are keyed like, or Faust's
        # agent crashes in a loop (PartitionsMismatch): follow the topic as it is.
        log.warning(
            "%s has %d partitions, not the %d configured; using %d",
            results,
            partitions[results],
            settings.kafka.partitions,
            partitions[results],
        )
        settings = settings.model_copy(
            update={"kafka": settings.kafka.model_copy(update={"partitions": partitions[results]})}
        )
    worker = create_worker(settings)
    logging.getLogger("streams").setLevel(settings.log_level.upper())
    if settings.metrics_port is not None:
        serve(settings.metrics_port, settings.metrics_host, worker.registry, worker.series)
    faust_worker = FaustWorker(worker.app, loglevel=settings.log_level, logfile=None, quiet=True)
    # At "warning" and above Faust installs a terminal spinner that turns every logger up to
    # DEBUG (to spin on each record): measured at a tenth of a busy worker's CPU. No spinner.
    faust_worker.spinner = None
    faust_worker.execute_from_commandline()
