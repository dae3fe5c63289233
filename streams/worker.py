"""A stream worker: the Faust app with its topics, agents and metrics, built from settings (never
at import)."""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types import TP
from faust.types.auth import CredentialsT
from prometheus_client import CollectorRegistry, Counter, Gauge

from streams import topics as topics_mod
from streams.agents import aggregate, deployments, merge, runs
from streams.app import App
from streams.kafka_admin import Reachability
from streams.prom import ConsumerLag, RunSeries
from streams.settings import WorkerSettings
from wire import KafkaAccess


@dataclass(frozen=True)
class Worker:
    app: App
    topics: topics_mod.FaustTopics
    registry: CollectorRegistry
    aggregate: aggregate.Aggregate
    merge: merge.Merge
    runs: runs.Runs
    deployments: deployments.Deployments
    series: RunSeries


def credentials(kafka: KafkaAccess) -> CredentialsT | None:
    """Faust's form of the worker's Kafka credentials (its own clients take
    :meth:`KafkaAccess.aiokafka`)."""
    if kafka.sasl:
        return faust.SASLCredentials(username=kafka.username, password=kafka.password,
                                     mechanism=kafka.mechanism,
                                     ssl_context=kafka.ssl_context())  # fmt: skip
    context = kafka.ssl_context()
    return faust.SSLCredentials(context) if context is not None else None


def create_worker(settings: WorkerSettings) -> Worker:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = App(
        settings.app_id,
        broker=[f"kafka://{hp.strip()}" for hp in settings.kafka.bootstrap.split(",")],
        broker_credentials=credentials(settings.kafka.access),
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
        broker_commit_interval=settings.commit_interval_s,
        table_cleanup_interval=30,
    )
    registry = CollectorRegistry()
    topics = topics_mod.declare(app, settings)
    series = RunSeries(settings.prometheus_max_labels)
    rebalances = Counter("shibuya_rebalances", "partition assignments received", registry=registry)
    owned = Gauge(
        "shibuya_owned_partitions",
        "results partitions assigned to this worker (the others' topics follow them)",
        registry=registry,
    )
    results_topic = topics.results.get_topic_name()

    async def _count(assigned: set[TP]) -> None:
        rebalances.inc()
        owned.set(sum(tp.topic == results_topic for tp in assigned))

    app.when_assigned(_count)

    agg = aggregate.register(app, settings, topics, registry)
    mrg = merge.register(app, settings, topics, registry, series)
    reach = Reachability(settings.kafka.access)
    app.every(1.0, "kafka-reachability", reach.check)
    app.drain_hooks.append(reach.close)
    rns = runs.register(app, settings, topics, registry, series, reach)
    dep = deployments.register(app, settings, topics, registry)

    def positions() -> list[tuple[str, int, int]]:
        return [
            (tp.topic, tp.partition, offset)
            for agent in (agg, mrg, rns, dep)
            for tp, offset in agent.positions().items()
        ]

    def highwater(topic: str, partition: int) -> int | None:
        try:
            end: int = app.consumer.highwater(TP(topic, partition))
        except Exception:  # not assigned, or the consumer is not started yet
            return None
        return end

    registry.register(ConsumerLag(positions, highwater))
    return Worker(app=app, topics=topics, registry=registry, aggregate=agg, merge=mrg, runs=rns,
                  deployments=dep, series=series)  # fmt: skip
