from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from shibuya.dev.postgres import PostgresServer
from tests.conftest import create_database
from tests.support.agents import serve_files
from tests.support.api import ApiServer, start_api
from tests.support.lifecycle import Harness
from tests.support.stream import Workers


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def file_server() -> Iterator[tuple[str, dict[str, bytes], list[str]]]:
    """Plan files over HTTP: (base URL, files by name, names refused for a bad token)."""
    yield from serve_files()


@pytest.fixture
def workers(kafka_bootstrap: str, unique: str, tmp_path: Path) -> Iterator[Workers]:
    """Stream workers for this test (app id and topic prefix ``unique``), stopped at the end."""
    pool = Workers(kafka_bootstrap, unique, tmp_path)
    yield pool
    pool.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(  # the real server: one per module and database
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PostgresServer,
    kafka_bootstrap: str,
) -> Iterator[ApiServer]:
    data = tmp_path_factory.mktemp(f"api-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{data / 'meta.db'}"
    else:
        url = create_database(postgres_server, f"api_{uuid.uuid4().hex[:10]}")
    prefix = f"t{uuid.uuid4().hex[:10]}"
    server = start_api(data, url, FILES__MAX_BYTES="100000", KAFKA__BOOTSTRAP=kafka_bootstrap,
                       KAFKA__TOPIC_PREFIX=prefix, RUNS_GROUP_ID=f"{prefix}-runs",
                       COMMANDS_GROUP_ID=f"{prefix}-commands")  # fmt: skip
    yield server
    server.stop()


@pytest.fixture
def live_api(tmp_path: Path, kafka_bootstrap: str, unique: str) -> Iterator[ApiServer]:
    """An API on this test's topics, with its ClickHouse sink (SQLite metadata)."""
    server = start_api(tmp_path / "api", f"sqlite:///{tmp_path / 'meta.db'}",
                       KAFKA__BOOTSTRAP=kafka_bootstrap, KAFKA__TOPIC_PREFIX=unique,
                       SINK__ENABLED="true", SINK__GROUP_ID=f"{unique}-sink",
                       RUNS_GROUP_ID=f"{unique}-runs", LIVE_POLL_S="0.2")  # fmt: skip
    yield server
    server.stop()


@pytest.fixture
def harness(kafka_bootstrap: str, unique: str) -> Iterator[Harness]:
    """Fake engines (heartbeats) and a reader of the stream's decisions."""
    h = Harness(kafka_bootstrap, unique)
    yield h
    h.close()


@pytest.fixture
def kube(kubeconfig: Path) -> Iterator[Any]:
    """A client of the cluster (the Kubernetes client is only partly typed: Any)."""
    api: Any = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    yield api
    api.close()


@pytest.fixture
def namespace(kube: Any) -> Iterator[str]:
    """A fresh namespace with the engines' service account."""
    core: Any = client.CoreV1Api(kube)
    name = f"t{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_service_account(name, {"metadata": {"name": "engine"}})
    yield name
    core.delete_namespace(name)
