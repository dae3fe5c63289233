"""Settings of a stream worker: environment variables ``SHIBUYA_WORKER_*``.

Nested groups use ``__``: ``SHIBUYA_WORKER_KAFKA__BOOTSTRAP=broker:9092``. Built once in
:mod:`streams.main` and passed down; nothing reads the environment at import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from wire import KafkaAccess, SaslMechanism, SecurityProtocol, Topics


class KafkaSettings(BaseModel):
    bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated")
    topic_prefix: str = Field("shibuya", description="prefix of every topic name")
    partitions: int = Field(8, ge=1, description="partitions of the topics the worker declares")
    replication: int = Field(1, ge=1, description="replication factor of declared topics")
    security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", description="PLAINTEXT, SASL_PLAINTEXT, SASL_SSL or SSL (docs/deploy.md)"
    )
    sasl_mechanism: SaslMechanism = Field("SCRAM-SHA-512", description="with SASL_*")
    username: str = Field("", description="this deployable's principal, with SASL_*")
    password: SecretStr = Field(SecretStr(""), description="its password, with SASL_*")
    ssl_cafile: str = Field("", description="CA bundle of the brokers, with *_SSL")
    compression: Literal["zstd", "lz4", "gzip", "none"] = Field(
        "zstd",
        description="compression of what the worker writes (partials, rows, state records)",
    )

    @property
    def access(self) -> KafkaAccess:
        return KafkaAccess(self.bootstrap, self.security_protocol, self.sasl_mechanism,
                           self.username, self.password.get_secret_value(),
                           self.ssl_cafile)  # fmt: skip

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SHIBUYA_WORKER_", env_nested_delimiter="__", extra="forbid"
    )

    app_id: str = Field(
        "shibuya-streams", description="Faust app id: consumer group and prefix of changelog topics"
    )
    data_dir: Path = Field(Path(".shibuya"), description="local state (Faust's data directory)")
    web_port: int | None = Field(None, description="Faust's web server port; off when unset")
    metrics_port: int | None = Field(
        9464, description="port of the Prometheus /metrics endpoint; off when unset"
    )
    metrics_host: str = Field("127.0.0.1", description="address of the /metrics endpoint")
    log_level: str = Field("info", description="debug, info, warning or error")
    flush_interval_s: float = Field(
        0.5, gt=0, le=60, description="how often partials and final rows are flushed"
    )
    commit_interval_s: float = Field(
        2.8,
        gt=0,
        description="how often consumed offsets are committed (only saves re-reading after a "
        "restart: the state records of streams/ledger.py are what make a restart exact)",
    )
    window_grace_s: int = Field(
        3,
        ge=0,
        le=3600,
        description="a second of sample time closes once a sample this much newer was seen (or "
        "the run was idle this long); samples for closed seconds are kept as late rows",
    )
    live_rows: bool = Field(
        True,
        description="publish, at each flush, provisional rows of runs' open seconds on live.v1 "
        "(what live views show before a second's final row; off saves the worker that work)",
    )
    max_labels_per_run: int = Field(
        1000, ge=1, description="labels per run and partition; more count as '(other labels)'"
    )
    max_codes: int = Field(
        200, ge=1, description="response codes per partition; more count as '(other codes)'"
    )
    prometheus_max_labels: int = Field(
        200, ge=1, description="label series per run in Prometheus; more as '(other labels)'"
    )
    engine_ttl_s: int = Field(
        3600, ge=60, description="forget an engine's batch sequence after this long without data"
    )
    run_ttl_s: int = Field(
        86400,
        ge=60,
        description="forget a run's window cursor (and drop its series) after this long idle",
    )
    stop_grace_s: int = Field(
        30,
        ge=0,
        description="after a run's ramp-up and duration, how long its engines get to finish on "
        "their own before the run's owner stops them",
    )
    engine_lost_s: int = Field(
        30,
        ge=1,
        description="an engine silent this long is lost",
    )
    stop_timeout_s: int = Field(
        120,
        ge=1,
        description="a run still stopping this long after its stop ends anyway (engines not "
        "done by then count as lost)",
    )
    run_settle_s: int = Field(
        15,
        ge=0,
        description="after a run's engines are done, how long without a sample counted before "
        "it ends with samples missing (it ends as soon as every published sample is counted; "
        "never less than 2 × (WINDOW_GRACE_S + 4 × FLUSH_INTERVAL_S))",
    )
    ended_run_ttl_s: int = Field(
        600, ge=1, description="how long an ended run is remembered (its late events ignored)"
    )
    gc_idle_s: int = Field(
        900,
        ge=1,
        description="purge a collection's engines when none has been busy (and no run started) "
        "this long: Shibuya's gc_duration",
    )
    purge_settle_s: int = Field(
        60,
        ge=0,
        description="heartbeats this soon after a purge come from engines going away, not from "
        "a new deployment",
    )
    kafka: KafkaSettings = KafkaSettings()
