"""The API's request and response bodies: what the services take and give back, and what the CLI
and the web UI read."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from wire.criteria import MAX_CRITERIA, MAX_CRITERION_CHARS

T = TypeVar("T")

#: Characters a name may not hold: C0 and C1 controls (PostgreSQL refuses NUL, terminals mangle
#: the rest), and the invisible ones that make two names look alike or text read backwards
#: (zero-width spaces and joiners, directional marks, embeddings, overrides and isolates, BOM).
HIDDEN = (r"\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069"
          r"\ufeff")  # fmt: skip
#: Printable text, and no leading or trailing space.
_PRINTABLE = rf"[^{HIDDEN}]"
_VISIBLE = rf"[^{HIDDEN}\x20]"
Name = Annotated[
    str,
    Field(min_length=1, max_length=200, pattern=rf"^{_VISIBLE}({_PRINTABLE}*{_VISIBLE})?$"),
]
Text = Annotated[str, Field(max_length=500, pattern=rf"^{_PRINTABLE}*$")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class Me(BaseModel):
    name: str
    groups: list[str]
    is_admin: bool


class ProjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    group: Name = Field(description="the owning group; the caller must be a member")


class ProjectPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name


class ProjectOut(BaseModel):
    id: int
    name: str
    group: str
    created_at: datetime


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name


class FileOut(BaseModel):
    name: str
    kind: str = Field(description="jmx, csv or data")
    size_bytes: int
    sha256: str
    uploaded_at: datetime


class PlanOut(BaseModel):
    id: int
    project_id: int
    name: str
    created_at: datetime
    files: list[FileOut]


Criteria = Annotated[
    list[Annotated[str, Field(max_length=MAX_CRITERION_CHARS)]],
    Field(
        max_length=MAX_CRITERIA,
        description="pass/fail criteria, e.g. 'p95(elapsed) > 500ms for 30s' (docs/criteria.md)",
    ),
]


#: A JMeter property's name (``-Jname=value``) and value; at most :data:`MAX_PROPERTIES` a level.
PROPERTY_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}$"
MAX_PROPERTIES, MAX_PROPERTY_CHARS = 100, 2000
Properties = Annotated[
    dict[
        Annotated[str, Field(pattern=PROPERTY_NAME)],
        Annotated[str, Field(max_length=MAX_PROPERTY_CHARS, pattern=rf"^{_PRINTABLE}*$")],
    ],
    Field(
        max_length=MAX_PROPERTIES,
        description="JMeter properties (-J): a run's override its "
        "plan's, which override its collection's, which override the server's",
    ),
]


#: An environment variable of JMeter's process (``${__env(NAME)}``); not one of those that change
#: what runs or how (the loader's, Java's, the sidecar's).
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,99}$"
RESERVED_ENV = re.compile(r"^(LD_|JAVA_|JDK_|_JAVA|SHIBUYA_|JMETER|PATH$|HOME$|CLASSPATH$)")


def free_env(name: str) -> str:
    if RESERVED_ENV.match(name):
        raise ValueError(f"{name[:40]} is reserved: it changes what runs or how")
    return name


Env = Annotated[
    dict[
        Annotated[str, Field(pattern=ENV_NAME), AfterValidator(free_env)],
        Annotated[str, Field(max_length=MAX_PROPERTY_CHARS, pattern=rf"^{_PRINTABLE}*$")],
    ],
    Field(
        max_length=MAX_PROPERTIES,
        description="environment variables of JMeter's process: a run's override its plan's, "
        "which override its collection's",
    ),
]


class CollectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    csv_split: bool = False
    thresholds: Criteria = []
    properties: Properties = {}
    env: Env = {}


class CollectionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    csv_split: bool | None = None
    thresholds: Criteria | None = None
    properties: Properties | None = None
    env: Env | None = None


class ExecutionPlan(BaseModel):
    """A plan in a collection: how many engines, threads, for how long (Shibuya's name). The
    collection config, the collection's answer and the run's start commands all speak of it."""

    model_config = ConfigDict(frozen=True)
    plan_id: int
    name: str
    engine: str = Field("jmeter", description="jmeter, locust or gatling")
    engines: int
    threads_per_engine: int
    users: int | None = Field(
        None,
        description="the users of all engines together, divided among them; null: "
        "threads_per_engine each",
    )
    ramp_up_s: int
    duration_s: int
    csv_split: bool
    properties: dict[str, str] = {}
    env: dict[str, str] = {}


class EngineTokenOut(BaseModel):
    collection_id: int
    token: str = Field(description="shown once: SHIBUYA_SIDECAR_ENGINE_TOKEN of the engines")


class CollectionOut(BaseModel):
    id: int
    project_id: int
    name: str
    csv_split: bool
    thresholds: list[str]
    properties: dict[str, str] = {}
    env: dict[str, str] = {}
    plans: list[ExecutionPlan]
    engines: int
    """Engines over all plans."""
    virtual_users: int
    """Engines × threads over all plans."""
    created_at: datetime
    warnings: list[str] = Field(
        default=[], description="what will not go as the config may mean, e.g. a CSV split among "
        "more engines than it has data rows",
    )  # fmt: skip


class CriterionVerdict(BaseModel):
    """A criterion's verdict and what it rests on (docs/criteria.md)."""

    criterion: str
    passed: bool | None
    breach_second_s: int | None = None
    value: float | None = None
    """The value that breached it, or (passed) the worst one evaluated: ms, a fraction, per
    second or a count."""
    error: str = ""
    threshold: float | None = None
    seconds: int = 0
    """Seconds evaluated: the breaching window's, or (passed) every second judged."""
    samples: int = 0
    note: str = ""


class RunOut(BaseModel):
    id: str
    collection_id: int
    state: str
    """deploying, running, stopping, finished, aborted or failed."""
    outcome: str | None
    reason: str
    started_at: datetime
    ended_at: datetime | None
    thresholds: list[str]
    properties: dict[str, str] = {}
    """The run's own properties (its plans' and collection's are theirs)."""
    env: dict[str, str] = {}
    """The run's own environment variables."""
    plan_engines: dict[str, str] = {}
    """The engine type each plan ran on: plan id → jmeter, locust or gatling."""
    engines: dict[str, int] = {}
    """expected, started, finished, failed, lost (from the stream)."""
    samples: int = 0
    failures: int = 0
    samples_missing: int = 0
    """Once ended: samples the engines published that the run did not count (lost data)."""
    criteria: list[CriterionVerdict] = []


class SecretIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: str = Field(
        min_length=1, max_length=MAX_PROPERTY_CHARS,
        description="stored sealed; never returned. The engines get it as a JMeter property",
    )  # fmt: skip


class SecretOut(BaseModel):
    """A secret as the API shows it: its name and when it was set, never its value."""

    name: str
    updated_at: datetime


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    properties: Properties = {}
    env: Env = {}
    external: bool = Field(
        False,
        description="your own engines feed the run (tail-only sidecars, an engine publishing "
        "itself): it is announced to the stream with its plans' engines, duration and the "
        "collection's criteria, and no engine is deployed or told to start (docs/sidecar.md)",
    )


class StopIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text = ""


class LaunchOut(BaseModel):
    id: int
    collection_id: int
    engines: int
    virtual_users: int
    launched_at: datetime
    purged_at: datetime | None
    purge_reason: str


class PurgeIn(BaseModel):
    reason: Text = ""


class PurgeOut(BaseModel):
    engines_removed: int = Field(description="engines the scheduler removed")
    launch: LaunchOut | None = Field(description="the launch this purge ended, if one was active")


class EngineOut(BaseModel):
    engine_id: str
    plan_id: str
    index: int
    phase: str | None = Field(description="what the scheduler says (None: it does not know it)")
    phase_detail: str = Field("", description="the scheduler's reason when not running")
    state: str | None = Field(description="what the engine last said (None: not heard from)")
    run_id: str | None
    heard_at: datetime | None
    threads: int
    cpu_cores: float | None
    memory_bytes: int | None
    detail: str


class PlanStatusOut(BaseModel):
    plan_id: int
    name: str
    engines: int = Field(description="engines the collection's config asks for")
    deployed: int = Field(description="engines the scheduler runs")
    ready: int = Field(description="engines heard from recently, not in a run")
    running: int = Field(description="engines heard from recently, in a run")


class CollectionStatusOut(BaseModel):
    collection_id: int
    scheduler: str
    launch: LaunchOut | None
    run_id: str | None = Field(description="the run in progress, if any")
    plans: list[PlanStatusOut]
    engines: list[EngineOut]
    purge_at: datetime | None = Field(
        None,
        description="when the stream purges the deployed engines unless a run starts before "
        "(their idle time reached GC_IDLE_S); none when nothing is deployed or not yet known",
    )


class UsageOut(BaseModel):
    project_id: int
    project: str
    group: str
    launches: int
    engine_hours: float
    virtual_user_hours: float
    runs: int


class UsageReportOut(BaseModel):
    since: datetime
    until: datetime
    projects: list[UsageOut]
    engine_hours: float
    virtual_user_hours: float


class RunningOut(BaseModel):
    """A collection with engines deployed or a run in progress."""

    project_id: int
    project: str
    group: str
    collection_id: int
    collection: str
    engines: int = Field(description="engines of its launch (0: none deployed)")
    virtual_users: int
    launched_at: datetime | None
    run_id: str | None
    run_state: str | None
