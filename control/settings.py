"""Settings of the control API: environment variables ``SHIBUYA_API_*``.

Nested groups use ``__``: ``SHIBUYA_API_DATABASE__URL=postgresql+psycopg://…``. Built in
:mod:`control.main` and passed down; nothing reads the environment at import.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from wire import KafkaAccess, SaslMechanism, SecurityProtocol, Topics


class KafkaSettings(BaseModel):
    bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated")
    topic_prefix: str = Field("shibuya", description="prefix of every topic name")
    send_timeout_s: float = Field(
        5, gt=0, le=120,
        description="how long a request waits for Kafka to take its records before it answers 503",
    )  # fmt: skip
    security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", description="PLAINTEXT, SASL_PLAINTEXT, SASL_SSL or SSL (docs/deploy.md)"
    )
    sasl_mechanism: SaslMechanism = Field("SCRAM-SHA-512", description="with SASL_*")
    username: str = Field("", description="this deployable's principal, with SASL_*")
    password: SecretStr = Field(SecretStr(""), description="its password, with SASL_*")
    ssl_cafile: str = Field("", description="CA bundle of the brokers, with *_SSL")
    sidecar_username: str = Field("", description="the engines' principal, with SASL_*")
    sidecar_password: SecretStr = Field(
        SecretStr(""),
        description="its password, given to engines the local scheduler starts (Kubernetes: a "
        "Secret in SCHEDULER__KUBERNETES__ENV_FROM_SECRETS instead)",
    )

    @property
    def access(self) -> KafkaAccess:
        return KafkaAccess(self.bootstrap, self.security_protocol, self.sasl_mechanism,
                           self.username, self.password.get_secret_value(),
                           self.ssl_cafile)  # fmt: skip

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    def sidecar_env(self, *, with_password: bool = True) -> dict[str, str]:
        """The same Kafka for the engines: their sidecars' settings (``SHIBUYA_SIDECAR_*``), as
        the principal ``sidecar_username`` (its password only where asked: on Kubernetes it
        comes from a Secret, never from the workload's spec)."""
        env = {"SHIBUYA_SIDECAR_KAFKA__BOOTSTRAP": self.bootstrap,
               "SHIBUYA_SIDECAR_KAFKA__TOPIC_PREFIX": self.topic_prefix,
               "SHIBUYA_SIDECAR_KAFKA__SECURITY_PROTOCOL": self.security_protocol,
               "SHIBUYA_SIDECAR_KAFKA__SASL_MECHANISM": self.sasl_mechanism,
               "SHIBUYA_SIDECAR_KAFKA__USERNAME": self.sidecar_username,
               "SHIBUYA_SIDECAR_KAFKA__SSL_CAFILE": self.ssl_cafile}  # fmt: skip
        if with_password and self.sidecar_password.get_secret_value():
            env["SHIBUYA_SIDECAR_KAFKA__PASSWORD"] = self.sidecar_password.get_secret_value()
        return env


class DatabaseSettings(BaseModel):
    url: str = Field("", description="SQLAlchemy URL; empty means SQLite under data_dir")


class ClickHouseSettings(BaseModel):
    dsn: str = Field("", description="clickhouse-connect DSN; empty means chdb under data_dir")


class SinkSettings(BaseModel):
    enabled: bool = Field(
        True, description="run the ClickHouse sink in this process (metrics.v1 → ClickHouse)"
    )
    group_id: str = Field(
        "shibuya-clickhouse-sink", description="consumer group shared by every replica's sink"
    )
    raw_samples: bool = Field(False, description="also store raw samples (TTL 7 days)")


class AuthSettings(BaseModel):
    mode: Literal["tokens", "none"] = Field(
        "tokens",
        description="tokens: every request needs a bearer token; none: no authentication, "
        "every request is the admin 'local' (one person on their own machine only)",
    )
    cache_s: float = Field(
        5.0,
        ge=0,
        description="a valid token's caller is remembered this long (a revoked token or a "
        "change of groups takes effect within it); 0: ask the database every time",
    )
    docs: Literal["users", "public", "off"] = Field(
        "users",
        description="the OpenAPI document (/openapi.json): users: any valid token; public: "
        "anyone, with the interactive pages /docs and /redoc too; off: not served",
    )
    session_hours: float = Field(
        12.0, gt=0, le=24 * 30,
        description="a web UI session (its cookie) lasts this long after login",
    )  # fmt: skip
    secure_cookies: Literal["auto", "always"] = Field(
        "auto",
        description="the session cookie's Secure flag: auto: when the request came over HTTPS "
        "(as the server sees it: behind a TLS proxy, run uvicorn with --proxy-headers); "
        "always: on every response",
    )


class OidcSettings(BaseModel):
    """Single sign-on for the web UI (docs/ui.md): OpenID Connect's authorization code flow with
    PKCE, against any provider (Keycloak, Dex, … — with an LDAP connector for LDAP's users)."""

    issuer: str = Field("", description="the provider's issuer URL; empty: no single sign-on")
    client_id: str = Field("", description="this API's client id at the provider")
    client_secret: SecretStr = Field(
        SecretStr(""), description="its secret (a confidential client); empty: a public client"
    )
    scopes: str = Field("openid profile email", description="the scopes asked for")
    username_claim: str = Field(
        "preferred_username", description="the claim that names the user in this API"
    )
    groups_claim: str = Field("groups", description="the claim listing the user's groups")
    groups: dict[str, str] = Field(
        {},
        description="provider group -> this API's group (JSON); empty: the provider's names as "
        "they are (a leading / of a group path dropped). Groups not mapped are ignored when set",
    )
    admin_groups: list[str] = Field(
        [], description="provider groups whose members are admins here (JSON list)"
    )
    public_url: str = Field(
        "",
        description="the UI's address as browsers reach it (the redirect URI is "
        "<public_url>/ui/oidc/callback); empty: the address the request came to",
    )


class FilesSettings(BaseModel):
    max_bytes: int = Field(100 * 2**20, ge=1, description="largest plan file accepted")
    plan_jars: bool = Field(
        False,
        description="a plan may carry .jar files (its own samplers, functions, libraries), "
        "which JMeter loads: code of the plan's owner. Off by default",
    )
    dir: Path | None = Field(
        None,
        description="where plan files are kept; empty: DATA_DIR/files. Replicas share it "
        "(a shared volume)",
    )


class SecretsSettings(BaseModel):
    key: SecretStr | None = Field(
        None,
        description="the Fernet key (URL-safe base64 of 32 bytes) sealing collections' secrets; "
        "empty: DATA_DIR/secrets.key, made once. Replicas share one: set it from a Secret",
    )


class LimitsSettings(BaseModel):
    max_engines_per_collection: int = Field(
        100, ge=1, description="engines a collection may have over all its plans"
    )
    max_threads_per_engine: int = Field(
        5_000, ge=1, description="threads (virtual users) one engine may run"
    )
    max_duration_s: int = Field(86_400, ge=1, description="the longest a plan may run")
    max_ramp_up_s: int = Field(86_400, ge=0, description="the longest a plan's ramp-up")
    max_engines_per_group: int = Field(
        500, ge=1, description="engines a group's collections may have deployed at once"
    )
    max_virtual_users_per_group: int = Field(
        250_000,
        ge=1,
        description="engines × threads a group's collections may have deployed at once",
    )
    max_body_bytes: int = Field(
        2 * 2**20,
        ge=1024,
        description="the largest request body (plan files have files.max_bytes), refused while "
        "it is read",
    )


class KubernetesSettings(BaseModel):
    """Engines as pods: one StatefulSet per plan (docs/schedulers.md says why)."""

    kubeconfig: Path | None = Field(
        None, description="kubeconfig file; empty: the pod's service account (in-cluster)"
    )
    context: str = Field("", description="kubeconfig context; empty: its current context")
    namespace: str = Field("default", description="namespace of the engines")
    image: str = Field(
        "shibuya-engine:0.1.0", description="engine image (JMeter + sidecar, `shibuya sidecar run`)"
    )
    images: dict[str, str] = Field(
        default_factory=lambda: {"locust": "shibuya-engine-locust:0.1.0",
                                 "gatling": "shibuya-engine-gatling:0.1.0"},
        description='the engine image of each other engine type, as JSON: {"locust": "…", '
        '"gatling": "…"} (docker/engine.Dockerfile builds each)',
    )  # fmt: skip
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description="pull policy of the engine image"
    )
    pull_secrets: list[str] = Field(
        default_factory=list, description='image pull secrets, as JSON: ["registry-cred"]'
    )
    service_account: str = Field("", description="engines' service account; empty: default")
    cpu_request: str = Field("1", description="CPU each engine asks for")
    cpu_limit: str = Field("", description="CPU limit of each engine; empty: none")
    memory_request: str = Field("1Gi", description="memory each engine asks for")
    memory_limit: str = Field("2Gi", description="memory limit of each engine; empty: none")
    node_selector: dict[str, str] = Field(
        default_factory=dict, description='node selector, as JSON: {"pool": "load"}'
    )
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list,
        description='tolerations, as JSON: [{"key": "load", "operator": "Exists"}]',
    )
    affinity: dict[str, Any] = Field(
        default_factory=dict, description="pod affinity, as JSON (a core/v1 Affinity)"
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="extra labels of the engines' pods, as JSON"
    )
    annotations: dict[str, str] = Field(
        default_factory=dict, description="extra annotations of the engines' pods, as JSON"
    )
    env_from_config_maps: list[str] = Field(
        default_factory=list,
        description="ConfigMaps whose keys become the engines' environment (sidecar settings "
        'shared by every engine), as JSON: ["shibuya-engine"]',
    )
    env_from_secrets: list[str] = Field(
        default_factory=list,
        description="Secrets whose keys become the engines' environment (Kafka credentials), "
        "as JSON",
    )
    health_port: int = Field(8089, description="the sidecar's /healthz and /metrics port")
    termination_grace_s: int = Field(
        60, ge=1, description="how long a stopping engine may take to stop JMeter and flush"
    )


class SchedulerSettings(BaseModel):
    kind: Literal["local", "kubernetes", "external"] = Field(
        "local",
        description="local: engines are sidecar processes on this machine; kubernetes: engines "
        "are pods; external: engines are deployed by someone else (deploy and purge do "
        "nothing, status from heartbeats)",
    )
    kubernetes: KubernetesSettings = KubernetesSettings()
    engines_dir: Path | None = Field(
        None, description="the local scheduler's engine folders; empty: DATA_DIR/engines"
    )
    sidecar_env: dict[str, str] = Field(
        default_factory=dict,
        description="extra environment of every engine (local and Kubernetes), as JSON: "
        '{"SHIBUYA_SIDECAR_JMETER__HEAP": "256m"}',
    )
    status_window_s: int = Field(
        30, ge=1, description="an engine heard from within this many seconds counts as up"
    )
    sandbox: Literal["auto", "bwrap", "none"] = Field(
        "auto",
        description="local scheduler: run each engine in a bubblewrap sandbox that sees its own "
        "folder, not the API's data or environment (a test plan is code); auto: when bubblewrap "
        "is installed",
    )
    single_tenant: bool = Field(
        False,
        description="local scheduler without a sandbox, with authentication on: every user may "
        "run code as the API's user (their plans can read the API's data); refused otherwise",
    )
    jmeter_home: Path | None = Field(
        None,
        description="local scheduler: the JMeter its engines run; empty: "
        "$SHIBUYA_CACHE_DIR/jmeter-5.6.3-plugins-1 (default ~/.cache/shibuya), where "
        "`shibuya dev jmeter` installs it",
    )
    locust_env: Path | None = Field(
        None,
        description="local scheduler: the Locust environment its engines run Locust plans with; "
        "empty: $SHIBUYA_CACHE_DIR/locust-2.47.0, where `shibuya dev locust` makes it",
    )
    gatling_home: Path | None = Field(
        None,
        description="local scheduler: the Gatling its engines run Gatling plans with; empty: "
        "$SHIBUYA_CACHE_DIR/gatling-3.15.1-launcher-3, where `shibuya dev gatling` puts it",
    )
    drain_s: float = Field(
        120,
        ge=0,
        description="local scheduler: how long a purge waits for engines still publishing "
        "results (Kafka away) before it stops them by force; their folders are then kept, not "
        "deleted, and the purge says so (Kubernetes: the pods' termination_grace_s)",
    )


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SHIBUYA_API_", env_nested_delimiter="__", extra="forbid"
    )

    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8080, description="port to listen on")
    public_url: str = Field(
        "", description="the URL engines reach this API at (plan files); empty: http://HOST:PORT"
    )
    runs_group_id: str = Field(
        "shibuya-api-runs", description="consumer group of the replicas recording runs' ends"
    )
    results_cache_s: float = Field(
        1.0,
        ge=0,
        description="an answer read from ClickHouse is shared with requests for the same thing "
        "for this long (0: every request queries)",
    )
    live_poll_s: float = Field(
        1.0, gt=0, le=60, description="how often a live stream (SSE) looks for new seconds"
    )
    commands_group_id: str = Field(
        "shibuya-api-commands",
        description="consumer group of the replicas executing the stream's purge commands",
    )
    data_dir: Path = Field(
        Path(".shibuya"), description="SQLite metadata, plan files, embedded ClickHouse"
    )
    kafka: KafkaSettings = KafkaSettings()
    database: DatabaseSettings = DatabaseSettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    sink: SinkSettings = SinkSettings()
    auth: AuthSettings = AuthSettings()
    oidc: OidcSettings = OidcSettings()
    files: FilesSettings = FilesSettings()
    secrets: SecretsSettings = SecretsSettings()
    limits: LimitsSettings = LimitsSettings()
    scheduler: SchedulerSettings = SchedulerSettings()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{(self.data_dir / 'shibuya.db').resolve()}"

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def engines_dir(self) -> Path:
        return self.scheduler.engines_dir or self.data_dir / "engines"

    @property
    def files_dir(self) -> Path:
        return self.files.dir or self.data_dir / "files"

    def make_private_dirs(self) -> None:
        """Create the data, plan files and engines folders readable by this user alone (0700),
        and make all this process creates from now on private too (umask 077): the SQLite
        database, plan files, the engines' folders and their copies of plan files."""
        os.umask(0o077)
        for path in (self.data_dir, self.files_dir, self.engines_dir):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o700)

    @property
    def clickhouse_dsn(self) -> str:
        return self.clickhouse.dsn or f"chdb:///{(self.data_dir / 'clickhouse').resolve()}"
