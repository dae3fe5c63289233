"""Settings of a stream worker: environment variables ``SHIBUYA_WORKER_*``.

Nested groups use ``__``: ``SHIBUYA_WORKER_KAFKA__BOOTSTRAP=broker:9092``. Built once in
:mod:`streams.main` and passed down; nothing reads the environment at import.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseModel):
    bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated")
    topic_prefix: str = Field("shibuya", description="prefix of every topic name")
    partitions: int = Field(8, ge=1, description="partitions of the topics the worker declares")
    replication: int = Field(1, ge=1, description="replication factor of declared topics")


class ClickHouseSettings(BaseModel):
    dsn: str = Field(
        "",
        description="clickhouse-connect DSN; empty means the embedded engine under data_dir "
        "(chdb:///<data_dir>/clickhouse), http://user:pass@host:8123/db for a server",
    )


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SHIBUYA_WORKER_", env_nested_delimiter="__", extra="forbid"
    )

    app_id: str = Field(
        "shibuya-streams", description="Faust app id: consumer group and prefix of changelog topics"
    )
    data_dir: Path = Field(
        Path(".shibuya"), description="local state: Faust tables, embedded ClickHouse"
    )
    web_port: int | None = Field(None, description="Faust's web server port; off when unset")
    metrics_port: int | None = Field(
        9464, description="port of the Prometheus /metrics endpoint; off when unset"
    )
    metrics_host: str = Field("127.0.0.1", description="address of the /metrics endpoint")
    log_level: str = Field("info", description="debug, info, warning or error")
    kafka: KafkaSettings = KafkaSettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()

    @property
    def clickhouse_dsn(self) -> str:
        return self.clickhouse.dsn or f"chdb:///{(self.data_dir / 'clickhouse').resolve()}"
