"""Config as code: a project, its plans with their files, and its collections, in one YAML file
(docs/config.md), read and checked with no server.

```yaml
project: shop
group: team-a                  # the owning group, when the project is created
plans:
  - name: browse
    files: [browse.jmx, users.csv]   # relative to this file
collections:
  - name: checkout
    criteria: ["p95(elapsed) > 500ms for 30s"]
    plans:
      - {plan: browse, engines: 2, threads: 50, ramp_up: 30s, duration: 10m, csv_split: true}
```

Types are strict (``csv_split: "no"`` is an error, not true); durations are seconds or ``90s``,
``10m``, ``1h30m``. Every problem is reported at once with where it is and, for an unknown key,
the nearest known one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from control.errors import ControlError
from control.schemas import (
    ENV_NAME,
    MAX_PROPERTIES,
    MAX_PROPERTY_CHARS,
    PROPERTY_NAME,
    free_env,
)
from control.services.config import (
    MAX_DEPTH,
    ConfigError,
    SafeLoader,
    criteria_problems,
    parse_config,
    unknown_keys,
    window_problems,
)
from control.services.jmx import check_jmx, check_python
from control.services.plans import kind_of
from engine_sidecar.errors import PlanError
from engine_sidecar.plan import rewrite_jmx

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def seconds(value: Any) -> Any:
    """``90``, ``"90s"``, ``"10m"``, ``"1h30m"`` → seconds; anything else is left for the
    strict type check to refuse."""
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match and any(match.groups()):
            h, m, s = (int(g or 0) for g in match.groups())
            return h * 3600 + m * 60 + s
        raise ValueError(f"a duration like 90s, 10m or 1h30m is needed, not {value[:40]!r}")
    return value


def _scalars(value: Any) -> Any:
    """Property values as JMeter writes them: ``8080`` → ``"8080"``, ``true`` → ``"true"``."""
    if isinstance(value, dict):
        return {k: str(v).lower() if isinstance(v, bool) else str(v) if isinstance(v, (int, float))
                else v for k, v in value.items()}  # fmt: skip
    return value


Seconds = Annotated[int, BeforeValidator(seconds)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Env = Annotated[
    dict[
        Annotated[str, Field(pattern=ENV_NAME), AfterValidator(free_env)],
        Annotated[str, Field(max_length=MAX_PROPERTY_CHARS)],
    ],
    BeforeValidator(_scalars),
    Field(max_length=MAX_PROPERTIES),
]
Properties = Annotated[
    dict[
        Annotated[str, Field(pattern=PROPERTY_NAME)],
        Annotated[str, Field(max_length=MAX_PROPERTY_CHARS)],
    ],
    BeforeValidator(_scalars),
    Field(max_length=MAX_PROPERTIES),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PlanDecl(_Strict):
    name: Name
    files: list[str] = Field(min_length=1)


class PlanRun(_Strict):
    """A plan in a collection: how many engines, threads each, for how long."""

    plan: Name
    engine: Literal["jmeter", "locust", "gatling"] = "jmeter"
    engines: int = Field(ge=1)
    threads: int = Field(ge=1, description="threads (Locust: users) per engine")
    duration: Seconds = Field(ge=1)
    ramp_up: Seconds = Field(default=0, ge=0)
    csv_split: bool = False
    properties: Properties = {}
    env: Env = {}


class CollectionDecl(_Strict):
    name: Name
    csv_split: bool = False
    criteria: list[str] = []
    properties: Properties = {}
    env: Env = {}
    plans: list[PlanRun] = Field(min_length=1)


class Declaration(_Strict):
    project: Name
    group: Name | None = None
    plans: list[PlanDecl] = []
    collections: list[CollectionDecl] = []


@dataclass(frozen=True)
class Declared:
    """A checked declaration and the folder its file paths are relative to."""

    spec: Declaration
    base: Path

    def files(self, plan: PlanDecl) -> list[Path]:
        return [self.base / f for f in plan.files]


def load(path: Path) -> Declared | str:
    """The declaration in ``path``, or — for Shibuya's ``multi-test`` format — its text, checked
    as far as it can be without a server. Raises :class:`ConfigError` with every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot be read: {exc}"]) from exc
    doc = _yaml(text)
    if isinstance(doc, dict) and "multi-test" in doc:
        parse_config(text)
        return text
    if not isinstance(doc, dict):
        raise ConfigError(["the document needs a mapping with 'project' (or 'multi-test')"])
    problems = _unknown(doc, Declaration, "")
    try:
        spec = Declaration.model_validate(doc)
    except ValidationError as exc:
        problems += [_problem(e) for e in exc.errors() if e["type"] != "extra_forbidden"]
        raise ConfigError(problems or ["not a declaration"]) from exc
    if problems:
        raise ConfigError(problems)
    declared = Declared(spec, path.parent)
    check(declared)
    return declared


def check(declared: Declared) -> None:
    """Raise :class:`ConfigError` with every problem that types cannot say."""
    problems = _consistency(declared)
    if problems:
        raise ConfigError(problems)


def _yaml(text: str) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=SafeLoader)  # noqa: S506 (safe, no aliases, MAX_DEPTH)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise ConfigError([f"not YAML: line {line}: {exc.problem or 'unreadable'}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(["not YAML"]) from exc


def _unknown(data: Any, model: type[BaseModel], where: str, depth: int = 0) -> list[str]:
    """Unknown keys anywhere in ``data`` as ``model`` reads it, each with a did-you-mean."""
    if not isinstance(data, dict) or depth > MAX_DEPTH:
        return []
    fields = model.model_fields
    problems = unknown_keys(where, data, tuple(fields))
    for key, info in fields.items():
        inner = info.annotation
        items = get_args(inner)[0] if get_origin(inner) is list else None
        if (
            isinstance(items, type)
            and issubclass(items, BaseModel)
            and isinstance(data.get(key), list)
        ):
            for i, item in enumerate(data[key]):
                problems += _unknown(item, items, f"{where}{key}[{i}].", depth + 1)
    return problems


def _problem(error: Any) -> str:
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "required"
    return f"{where or 'the document'}: {message}"


def _consistency(d: Declared) -> list[str]:
    """What types cannot say: names unique, plans named exist, files exist and are a plan's,
    ramp-ups within their duration, criteria that parse and fit in the run."""
    problems: list[str] = []
    declared = {p.name for p in d.spec.plans}
    for kind, items in (("plans", d.spec.plans), ("collections", d.spec.collections)):
        names = [x.name for x in items]
        problems += [f"{kind}[{i}].name: {n!r} is declared twice"
                     for i, n in enumerate(names) if n in names[:i]]  # fmt: skip
    for i, plan in enumerate(d.spec.plans):
        problems += _file_problems(d, plan, f"plans[{i}]")
    for i, c in enumerate(d.spec.collections):
        at = f"collections[{i}]"
        seen: set[str] = set()
        for j, run in enumerate(c.plans):
            if run.plan in seen:
                problems.append(f"{at}.plans[{j}].plan: {run.plan!r} is listed twice")
            seen.add(run.plan)
            if run.plan not in declared:
                problems.append(f"{at}.plans[{j}].plan: no plan {run.plan!r} is declared "
                                f"(declared: {', '.join(sorted(declared)) or 'none'})")  # fmt: skip
            if run.ramp_up > run.duration:
                problems.append(f"{at}.plans[{j}].ramp_up: {run.ramp_up} s, longer than the "
                                f"duration ({run.duration} s)")  # fmt: skip
        problems += [f"{at}.{p}" for p in criteria_problems(c.criteria)]
        problems += window_problems(f"{at}.criteria", c.criteria,
                                    max(r.duration for r in c.plans))  # fmt: skip
    return [p.replace(".thresholds", ".criteria") for p in problems]


def _file_problems(d: Declared, plan: PlanDecl, at: str) -> list[str]:
    problems = []
    jmx = [f for f in plan.files if f.lower().endswith(".jmx")]
    code = [f for f in plan.files if f.lower().endswith((".py", ".java"))]
    if len(jmx) > 1 or not (jmx or code):
        problems.append(f"{at}.files: one .jmx (JMeter), .py files (Locust) or .java files "
                        f"(Gatling) are needed, not {len(jmx)} .jmx")  # fmt: skip
    names = [Path(f).name for f in plan.files]
    for k, (f, path) in enumerate(zip(plan.files, d.files(plan), strict=True)):
        where = f"{at}.files[{k}]"
        if names[k] in names[:k]:
            problems.append(f"{where}: a second file named {names[k]!r}")
        try:
            kind_of(path.name, jars=True)  # whether the server takes jars is the server's call
        except ControlError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if not path.is_file():
            problems.append(f"{where}: {f} is not a file (relative to {d.base})")
        elif path.suffix.lower() == ".jmx":
            problems += [f"{where}: {p}" for p in jmx_problems(path)]
        elif path.suffix.lower() == ".py":
            try:
                check_python(path, path.name)
            except ControlError as exc:
                problems.append(f"{where}: {exc}")
    return problems


def jmx_problems(path: Path) -> list[str]:
    """What the API and the engines would refuse in a test plan (empty when it is fine)."""
    try:
        check_jmx(path, path.name)
        rewrite_jmx(path.read_bytes(), threads=1, ramp_up_s=0, duration_s=1)
    except (ControlError, PlanError) as exc:
        return [str(exc)]
    return []
