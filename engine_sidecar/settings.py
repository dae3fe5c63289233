"""Settings of an engine sidecar: environment variables ``SHIBUYA_SIDECAR_*``.

Nested groups use ``__``: ``SHIBUYA_SIDECAR_BATCH__MAX_SAMPLES=5000``. Built in
:mod:`engine_sidecar.main` and passed down; nothing reads the environment at import.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wire import KafkaAccess, SaslMechanism, SecurityProtocol, Topics


class KafkaSettings(BaseModel):
    bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated")
    topic_prefix: str = Field("shibuya", description="prefix of every topic name")
    compression: str = Field(
        "zstd",
        description="producer compression: none, gzip, lz4 or zstd (aiokafka compresses lz4 at "
        "level 9: ten times zstd's CPU for bigger batches)",
    )
    security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", description="PLAINTEXT, SASL_PLAINTEXT, SASL_SSL or SSL (docs/deploy.md)"
    )
    sasl_mechanism: SaslMechanism = Field("SCRAM-SHA-512", description="with SASL_*")
    username: str = Field("", description="this deployable's principal, with SASL_*")
    password: SecretStr = Field(SecretStr(""), description="its password, with SASL_*")
    ssl_cafile: str = Field("", description="CA bundle of the brokers, with *_SSL")

    @property
    def access(self) -> KafkaAccess:
        return KafkaAccess(self.bootstrap, self.security_protocol, self.sasl_mechanism,
                           self.username, self.password.get_secret_value(),
                           self.ssl_cafile)  # fmt: skip

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)


class BatchSettings(BaseModel):
    max_samples: int = Field(
        10_000, ge=1, le=100_000, description="samples per result batch at most (about 47 bytes "
        "each, before compression)",
    )  # fmt: skip
    max_interval_ms: int = Field(
        500,
        ge=10,
        le=500,
        description="a batch not full leaves at the next send tick: every "
        "this many ms, 30 % past each multiple of it on the wall clock (…:00.150, …:00.650)",
    )
    max_group: int = Field(
        8, ge=1, le=64, description="full batches of a backlog sent together: one checkpoint "
        "write and one wait for the broker for all",
    )  # fmt: skip


class EngineIdentity(BaseModel):
    collection_id: str = Field("local", description="collection the engine belongs to")
    plan_id: str = Field("plan", description="plan the engine runs")
    engine_index: int = Field(0, ge=0, description="index of the engine within its plan")


#: The JMeter property of the results' format (csv or xml).
OUTPUT_FORMAT = "jmeter.save.saveservice.output_format"


class JMeterSettings(BaseModel):
    home: Path = Field(
        Path.home() / ".cache" / "shibuya" / "jmeter-5.6.3-plugins-1",
        description="JMETER_HOME (bin/ApacheJMeter-*.jar); `shibuya dev jmeter install` fills "
        "the default",
    )
    heap: str = Field("512m", description="JVM heap of JMeter (-Xms and -Xmx)")
    stop_port: int = Field(0, description="JMeter's UDP stop-test port; 0 picks a free one per run")
    properties: dict[str, str] = Field(
        default_factory=dict, description='extra -J properties, as JSON: {"target.port": "80"}'
    )

    @field_validator("properties")
    @classmethod
    def _results_in_csv(cls, properties: dict[str, str]) -> dict[str, str]:
        """The sidecar reads JMeter's CSV results: it asks JMeter for them, and refuses to be
        told otherwise."""
        fmt = properties.get(OUTPUT_FORMAT, "csv").strip().lower()
        if fmt != "csv":
            raise ValueError(f"{OUTPUT_FORMAT}={fmt!r}: the sidecar reads CSV results only")
        return properties


class LocustSettings(BaseModel):
    python: Path = Field(
        Path.home() / ".cache" / "shibuya" / "locust-2.47.0" / "bin" / "python",
        description="the Python of Locust's environment; `shibuya dev locust` fills the default",
    )
    stop_timeout_s: float = Field(
        10, ge=0, description="after a stop, how long users may finish their task"
    )


class GatlingSettings(BaseModel):
    home: Path = Field(
        Path.home() / ".cache" / "shibuya" / "gatling-3.15.1-launcher-3",
        description="Gatling's jars (lib/) and the sidecar's launcher (launcher/); `shibuya dev "
        "gatling` fills the default",
    )
    heap: str = Field("512m", description="JVM heap of Gatling (-Xms and -Xmx)")


class SidecarSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SHIBUYA_SIDECAR_", env_nested_delimiter="__", extra="forbid"
    )

    work_dir: Path = Field(Path(".shibuya/engine"), description="plan files, results, checkpoints")
    health_host: str = Field("127.0.0.1", description="address of /healthz and /metrics")
    health_port: int = Field(8089, description="port of /healthz and /metrics (0: any free one)")
    heartbeat_interval_s: float = Field(5.0, gt=0, description="seconds between heartbeats")
    max_command_age_s: float = Field(600, gt=0, description="older commands are ignored")
    tail_give_up_s: float = Field(
        30,
        gt=0,
        description="tail-only mode: after SIGTERM, how long Kafka may refuse a batch before the "
        "sidecar exits (1), keeping it in its checkpoint for the next start",
    )
    engine_token: SecretStr = Field(
        SecretStr(""),
        description="what the engine fetches its runs' plan files with: given by the scheduler "
        "that deploys it, or issued by `shibuya engine-token COLLECTION` for engines run "
        "elsewhere",
    )
    engine: EngineIdentity = EngineIdentity()
    jmeter: JMeterSettings = JMeterSettings()
    locust: LocustSettings = LocustSettings()
    gatling: GatlingSettings = GatlingSettings()
    kafka: KafkaSettings = KafkaSettings()
    batch: BatchSettings = BatchSettings()

    @property
    def engine_id(self) -> str:
        e = self.engine
        return f"{e.collection_id}-{e.plan_id}-{e.engine_index}"
