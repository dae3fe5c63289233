"""Settings: embedded defaults on one machine, prefixed variables, nested groups."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from control.settings import ApiSettings, AuthSettings
from engine_sidecar.settings import SidecarSettings
from streams.settings import WorkerSettings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("SHIBUYA_"):
            monkeypatch.delenv(name)


def test_defaults_run_everything_on_one_machine() -> None:
    worker, api, sidecar = WorkerSettings(), ApiSettings(), SidecarSettings()
    assert worker.kafka.bootstrap == api.kafka.bootstrap == sidecar.kafka.bootstrap
    assert worker.kafka.bootstrap == "127.0.0.1:9092"
    assert api.clickhouse_dsn == f"chdb:///{Path('.shibuya/clickhouse').resolve()}"
    assert api.database_url == f"sqlite:///{Path('.shibuya/shibuya.db').resolve()}"
    assert api.files_dir == Path(".shibuya/files")
    assert sidecar.batch.max_interval_ms == 500


def test_each_deployable_reads_only_its_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIBUYA_WORKER_KAFKA__BOOTSTRAP", "w:1")
    monkeypatch.setenv("SHIBUYA_API_KAFKA__BOOTSTRAP", "a:2")
    monkeypatch.setenv("BROKER_URL", "kafka://faust-reads-this:3")  # bare names are Faust's
    assert WorkerSettings().kafka.bootstrap == "w:1"
    assert ApiSettings().kafka.bootstrap == "a:2"
    assert SidecarSettings().kafka.bootstrap == "127.0.0.1:9092"


def test_explicit_dsn_and_database_url_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIBUYA_API_CLICKHOUSE__DSN", "http://ch:8123/shibuya")
    monkeypatch.setenv("SHIBUYA_API_DATABASE__URL", "postgresql+psycopg://db/shibuya")
    assert ApiSettings().clickhouse_dsn == "http://ch:8123/shibuya"
    assert ApiSettings().database_url == "postgresql+psycopg://db/shibuya"


def test_unknown_and_invalid_values_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="partitions"):
        WorkerSettings(kafka={"partitions": 0})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        WorkerSettings(kafka_bootstrap="x")  # type: ignore[call-arg]


def test_engine_id_is_derived_from_the_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIBUYA_SIDECAR_ENGINE__COLLECTION_ID", "c9")
    monkeypatch.setenv("SHIBUYA_SIDECAR_ENGINE__PLAN_ID", "p3")
    monkeypatch.setenv("SHIBUYA_SIDECAR_ENGINE__ENGINE_INDEX", "2")
    assert SidecarSettings().engine_id == "c9-p3-2"


def test_the_openapi_document_is_served_as_auth_docs_says(tmp_path: Path) -> None:
    import asyncio

    import httpx

    from control.api.app import create_app

    async def get_all(docs: str) -> list[int]:
        settings = ApiSettings(data_dir=tmp_path, auth=AuthSettings(docs=docs))
        # No lifespan: these pages need nothing the context opens.
        transport = httpx.ASGITransport(app=create_app(settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return [(await client.get(p)).status_code for p in ("/openapi.json", "/docs", "/redoc")]

    def codes(docs: str) -> list[int]:
        return asyncio.run(get_all(docs))

    assert codes("public") == [200, 200, 200]
    assert codes("off") == [404, 404, 404]
