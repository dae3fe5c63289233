"""Entry points of the sidecar: settings → resources → run until SIGTERM, drain, exit."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from prometheus_client import CollectorRegistry

from engine_sidecar import health
from engine_sidecar.heartbeat import EngineRef, Heartbeat, Snapshot
from engine_sidecar.kafka import producer
from engine_sidecar.procstats import meter_for
from engine_sidecar.publisher import Identity, Limits, PublisherMetrics, ResultPublisher
from engine_sidecar.settings import SidecarSettings
from streams.wire import EngineState, Topic, topic_name

log = logging.getLogger(__name__)


def tail(
    settings: SidecarSettings, path: Path, identity: Identity, engine_pid: int | None = None
) -> None:
    """Tail-only mode: publish the results file of an engine this sidecar did not start."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # aiokafka logs every failed reconnect at ERROR; our own warnings say what is retried.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    asyncio.run(_tail(settings, path, identity, engine_pid))


async def _tail(
    settings: SidecarSettings, path: Path, identity: Identity, engine_pid: int | None = None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    registry = CollectorRegistry()
    limits = Limits(settings.batch.max_samples, settings.batch.max_interval_ms)
    async with producer(settings.kafka.bootstrap, settings.kafka.compression) as p:
        publisher = ResultPublisher(
            path=path,
            checkpoint_path=settings.work_dir / f"checkpoint-{identity.engine_id}.json",
            identity=identity,
            producer=p,
            topic=topic_name(Topic.RESULTS, settings.kafka.topic_prefix),
            metrics=PublisherMetrics(registry),
            limits=limits,
        )

        def status() -> dict[str, object]:
            return {
                "status": "ok",
                "file": str(path),
                "run_id": identity.run_id,
                "engine_id": identity.engine_id,
                "samples_published": publisher.samples_published,
                "malformed_lines": publisher.errors.count,
            }

        def snapshot() -> Snapshot:
            return Snapshot(
                state=EngineState.FINISHED if publisher_done.is_set() else EngineState.RUNNING,
                run_id=identity.run_id,
                threads=publisher.threads,
                samples_published=publisher.samples_published,
                malformed_lines=publisher.errors.count,
            )

        e = settings.engine
        heartbeat = Heartbeat(
            sender=p,
            topic=topic_name(Topic.ENGINE_STATUS, settings.kafka.topic_prefix),
            engine=EngineRef(e.collection_id, identity.plan_id, e.engine_index, identity.engine_id),
            snapshot=snapshot,
            meter=meter_for(engine_pid),
            interval_s=settings.heartbeat_interval_s,
        )
        publisher_done = asyncio.Event()
        async with health.serve(
            settings.health_host, settings.health_port, registry, status
        ) as port:
            log.info("tailing %s as %s (health and metrics on port %d)", path, identity, port)
            beats = asyncio.create_task(heartbeat.run(publisher_done))
            try:
                await publisher.run(stop)
            finally:
                publisher_done.set()
                await beats
            await heartbeat.send_now()  # the last word: finished, with the final counts
        log.info(
            "stopped: %d samples published, %d malformed lines skipped, %d heartbeats sent",
            publisher.samples_published,
            publisher.errors.count,
            heartbeat.sent,
        )
