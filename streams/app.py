"""The Faust app of a stream worker, built from settings (never at import)."""

from __future__ import annotations

from dataclasses import dataclass

import faust
from prometheus_client import CollectorRegistry

from streams import tables as tables_mod
from streams import topics as topics_mod
from streams.agents import ingest
from streams.settings import WorkerSettings


@dataclass(frozen=True)
class Worker:
    app: faust.App
    topics: topics_mod.Topics
    tables: tables_mod.Tables
    registry: CollectorRegistry


def create_app(settings: WorkerSettings) -> Worker:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{hp.strip()}" for hp in settings.kafka.bootstrap.split(",")],
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.kafka.partitions,
        topic_replication_factor=settings.kafka.replication,
        topic_allow_declare=True,
        web_enabled=settings.web_port is not None,
        web_port=settings.web_port or 6066,
        web_host="127.0.0.1",
        # Defaults wait ~half of a 60 s session timeout on the first group join.
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        broker_rebalance_timeout=10,
        producer_linger=0.01,
        table_cleanup_interval=30,
    )
    registry = CollectorRegistry()
    topics = topics_mod.declare(app, settings)
    tables = tables_mod.declare(app, settings.kafka.partitions)
    ingest.register(app, topics, tables, ingest.IngestMetrics(registry))
    return Worker(app=app, topics=topics, tables=tables, registry=registry)
