"""Session services for the integration tiers, and per-test isolation.

The Kafka broker is real: ``SHIBUYA_TEST_KAFKA`` names one to reuse (``.ci/run`` starts one);
otherwise the session starts its own on free loopback ports and stops it at the end. PostgreSQL
likewise: ``SHIBUYA_TEST_POSTGRES`` (a SQLAlchemy URL of a superuser) or a server of the
session's own; each test that needs it gets a fresh database.
Every test gets its own topic prefix and consumer group, so tests never see each other's data.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from control.results.clickhouse import Store
from shibuya.dev.kafka import KafkaBroker
from shibuya.dev.kube import KubeCluster
from shibuya.dev.postgres import PostgresServer
from shibuya.dev.procs import free_port, port_open


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("SHIBUYA_TEST_KAFKA")
    if given:
        host, _, port = given.rpartition(":")
        if not port_open(host, int(port)):
            pytest.fail(f"SHIBUYA_TEST_KAFKA={given} does not answer")
        yield given
        return
    broker = KafkaBroker(
        tmp_path_factory.mktemp("kafka"), port=free_port(), controller_port=free_port()
    )
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    given = os.environ.get("SHIBUYA_TEST_POSTGRES")
    if given:
        port = int(given.rsplit("@", 1)[1].split("/")[0].rsplit(":", 1)[1])
        yield PostgresServer(Path("/nonexistent"), port)  # started by whoever set the variable
        return
    # Not under pytest's 0700 temp root: the server runs as the postgres user.
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="shibuya-pg-")), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, unique: str) -> str:
    """A fresh, empty PostgreSQL database for this test."""
    return create_database(postgres_server, unique)


def create_database(server: PostgresServer, name: str) -> str:
    """Create an empty database on ``server``; return its SQLAlchemy URL."""
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres",
                         autocommit=True) as conn:  # fmt: skip
        conn.execute(f'CREATE DATABASE "{name}"')  # name is ours, not user input
    return server.url(name)


@pytest.fixture(scope="session")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real Kubernetes control plane with KWOK's fake nodes: its kubeconfig. Reused from
    ``SHIBUYA_TEST_KUBECONFIG``, else started for the session (built first if not cached)."""
    given = os.environ.get("SHIBUYA_TEST_KUBECONFIG")
    if given:
        yield Path(given)
        return
    cluster = KubeCluster(tmp_path_factory.mktemp("kube"))
    try:
        cluster.start()
        yield cluster.kubeconfig
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The real ClickHouse engine, embedded (chdb): one data path per process, so one per
    session; tests keep apart by run id."""
    store = Store.open(f"chdb:///{tmp_path_factory.mktemp('clickhouse')}")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def unique() -> str:
    """A fresh name for this test's topics, groups and app ids."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
