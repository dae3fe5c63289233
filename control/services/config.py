"""Shibuya's collection config (the ``multi-test`` YAML): parsed, validated, rendered.

```yaml
multi-test:
  name: checkout
  projectid: 3
  collectionid: 12
  csv_split: false
  thresholds: ["p95(elapsed) > 500ms for 30s"]   # ours; Shibuya has none
  tests:
    - {name: browse, testid: 7, concurrency: 50, rampup: 30, engines: 2, duration: 10}
    - {name: buy, testid: 8, concurrency: 10, rampup: 0, engines: 1, duration_s: 90}
```

As in Shibuya: ``concurrency`` is threads per engine, ``rampup`` seconds, ``duration`` minutes;
``duration_s`` (ours) gives seconds instead, for short tests. Ours too: ``engine`` (``jmeter``,
the default, ``locust`` or ``gatling``) and ``users``, the users of all the plan's engines
together, divided among them (instead of ``concurrency``). Validation is Shibuya's — the ids
match the URL and the project, every plan exists in the project, engines and threads are at least
1, the engines add up to at most the limit — plus ours: criteria parse, a plan appears once.
Every problem is reported with where it is (``tests[1].engines``), all at once.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from control.errors import InvalidError
from control.schemas import (
    ENV_NAME,
    HIDDEN,
    MAX_PROPERTIES,
    MAX_PROPERTY_CHARS,
    PROPERTY_NAME,
    RESERVED_ENV,
    ExecutionPlan,
)
from wire import EngineKind
from wire.criteria import MAX_CRITERIA, CriterionError, parse

MAX_CONFIG_BYTES = 1 << 20
#: How deep a config may nest (it needs 4), and how many problems one answer lists.
MAX_DEPTH, MAX_PROBLEMS = 20, 50
#: The databases' integer keys are 32-bit.
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class Bounds:
    """What one plan of a collection may ask for (``LIMITS__*`` settings)."""

    max_engines: int = 100
    max_threads_per_engine: int = 5_000
    max_duration_s: int = 86_400
    max_ramp_up_s: int = 86_400


@dataclass(frozen=True)
class CollectionConfig:
    name: str
    project_id: int
    collection_id: int
    csv_split: bool
    thresholds: list[str]
    plans: list[ExecutionPlan]
    properties: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


class ConfigError(InvalidError):
    """Every problem of a config, each with where it is (at most :data:`MAX_PROBLEMS`)."""

    def __init__(self, problems: list[str]) -> None:
        if len(problems) > MAX_PROBLEMS:
            problems = [*problems[:MAX_PROBLEMS], f"… and {len(problems) - MAX_PROBLEMS} more"]
        super().__init__(problems[0], problems)
        self.problems = problems


class SafeLoader(yaml.SafeLoader):
    """YAML without aliases (a few hundred bytes of nested aliases expand to gigabytes) and
    without deep nesting."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        line = self.peek_event().start_mark.line + 1  # type: ignore[no-untyped-call]
        if self.check_event(yaml.AliasEvent):
            raise ConfigError([f"line {line}: YAML aliases (*name) are not accepted"])
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise ConfigError([f"line {line}: nested deeper than {MAX_DEPTH} levels"])
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def shown(value: Any) -> str:
    """A value a user sent, for a message: short, never a whole structure."""
    if isinstance(value, (bool, int, float)) or value is None:
        text = repr(value)
        return text if len(text) <= 40 else f"a number of {len(text)} digits"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "…")
    return f"a {type(value).__name__}"


TOP_KEYS = ("name", "projectid", "collectionid", "csv_split", "thresholds", "properties", "env",
            "tests")  # fmt: skip
TEST_KEYS = ("name", "testid", "engine", "concurrency", "users", "rampup", "engines", "duration",
             "duration_s", "csv_split", "properties", "env")  # fmt: skip
ENGINES = tuple(k.value for k in EngineKind)


def unknown_keys(where: str, mapping: dict[Any, Any], known: tuple[str, ...]) -> list[str]:
    """A problem for each key of ``mapping`` not in ``known``, with the nearest known one."""
    problems = []
    for key in mapping:
        if key not in known:
            near = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f"; known: {', '.join(known)}"
            printable = isinstance(key, str) and key.isprintable() and len(key) <= 40
            text = key if printable else shown(key)
            problems.append(f"{where}{text}: unknown key{hint}")
    return problems


def properties_of(where: str, value: Any, problems: list[str], env: bool = False) -> dict[str, str]:
    """JMeter properties (or, ``env``, environment variables) from YAML: names as JMeter (or
    the process) takes them, scalar values (numbers and booleans as JMeter writes them:
    ``8080``, ``true``); each problem appended."""
    pattern, what = (
        (ENV_NAME, "an environment variable's") if env else (PROPERTY_NAME, "a property")
    )
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{where}: a mapping of names to values is needed, not {shown(value)}")
        return {}
    if len(value) > MAX_PROPERTIES:
        problems.append(f"{where}: at most {MAX_PROPERTIES} properties, not {len(value)}")
        return {}
    out = {}
    for name, v in value.items():
        if (not isinstance(name, str) or not re.match(pattern, name)
                or (env and RESERVED_ENV.match(name))):  # fmt: skip
            problems.append(
                f"{where}: {shown(name)} is not {what} name we take (letters, "
                "digits, '_'; properties also '.', '-'; no LD_, JAVA_, PATH …)"
            )
            continue
        if isinstance(v, bool):
            v = str(v).lower()
        if not isinstance(v, (str, int, float)) or len(str(v)) > MAX_PROPERTY_CHARS:
            problems.append(f"{where}.{name}: a text of at most {MAX_PROPERTY_CHARS} characters "
                            f"is needed, not {shown(v)}")  # fmt: skip
        elif re.search(f"[{HIDDEN}]", str(v)):
            problems.append(f"{where}.{name}: control and invisible characters are not allowed")
        else:
            out[name] = str(v)
    return out


def window_problems(where: str, texts: list[str], run_s: int) -> list[str]:
    """Criteria whose window is longer than the run (``run_s``): they could never be judged."""
    problems = []
    for i, text in enumerate(texts):
        try:
            seconds = parse(text).seconds
        except CriterionError:
            continue
        if seconds > run_s:
            problems.append(f"{where}[{i}]: its window ({seconds} s) is longer than the run "
                            f"({run_s} s)")  # fmt: skip
    return problems


def parse_config(text: str, bounds: Bounds = Bounds()) -> CollectionConfig:
    """Parse and check the document's shape; raise :class:`ConfigError` listing every problem."""
    try:
        doc = yaml.load(text, Loader=SafeLoader)  # noqa: S506 (a safe loader, aliases refused)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise ConfigError([f"not YAML: line {line}: {exc.problem or 'unreadable'}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(["not YAML"]) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("multi-test"), dict):
        raise ConfigError(["the document needs a top-level 'multi-test' mapping"])
    top: dict[str, Any] = doc["multi-test"]
    problems: list[str] = unknown_keys("", top, TOP_KEYS)

    def integer(where: str, value: Any, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{where}: a whole number is needed, not {shown(value)}")
            return low
        if not low <= value <= high:
            problems.append(f"{where}: {low} to {high:,}, not {shown(value)}")
            return low
        return value

    def text_of(where: str, value: Any, default: str = "") -> str:
        if value is None:
            return default
        if not isinstance(value, str) or len(value) > 200:
            problems.append(f"{where}: a text of at most 200 characters is needed, "
                            f"not {shown(value)}")  # fmt: skip
            return default
        return value

    def flag(where: str, value: Any) -> bool:
        if value is None:
            return False
        if not isinstance(value, bool):
            problems.append(f"{where}: true or false is needed, not {shown(value)}")
            return False
        return value

    name = top.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        problems.append("name: a non-empty text of at most 200 characters is needed")
    elif re.search(f"[{HIDDEN}]", name):
        problems.append("name: control and invisible characters are not allowed")
    project_id = integer("projectid", top.get("projectid"), 1, MAX_ID)
    collection_id = integer("collectionid", top.get("collectionid"), 1, MAX_ID)
    thresholds = top.get("thresholds", [])
    if not isinstance(thresholds, list) or not all(isinstance(t, str) for t in thresholds):
        problems.append("thresholds: a list of criteria is needed")
        thresholds = []
    problems += criteria_problems(thresholds)
    tests = top.get("tests")
    plans: list[ExecutionPlan] = []
    if not isinstance(tests, list) or not tests:
        problems.append("tests: a non-empty list of plans is needed")
        tests = []
    seen: set[int] = set()
    b = bounds
    for i, t in enumerate(tests):
        at = f"tests[{i}]"
        if not isinstance(t, dict):
            problems.append(f"{at}: a mapping is needed")
            continue
        problems += unknown_keys(f"{at}.", t, TEST_KEYS)
        plan_id = integer(f"{at}.testid", t.get("testid"), 1, MAX_ID)
        if plan_id in seen:
            problems.append(f"{at}.testid: plan {plan_id} is listed twice")
        seen.add(plan_id)
        if "duration_s" in t and "duration" in t:
            problems.append(f"{at}: duration (minutes) or duration_s (seconds), not both")
        if "duration_s" in t:
            duration_s = integer(f"{at}.duration_s", t["duration_s"], 1, b.max_duration_s)
        else:
            duration_s = integer(f"{at}.duration", t.get("duration"), 1,
                                 b.max_duration_s // 60) * 60  # fmt: skip
        ramp_up_s = integer(f"{at}.rampup", t.get("rampup", 0), 0, b.max_ramp_up_s)
        if ramp_up_s > duration_s:
            problems.append(f"{at}.rampup: {ramp_up_s} s, longer than the duration "
                            f"({duration_s} s)")  # fmt: skip
        engines = integer(f"{at}.engines", t.get("engines"), 1, b.max_engines)
        engine = t.get("engine", "jmeter")
        if engine not in ENGINES:
            problems.append(f"{at}.engine: one of {', '.join(ENGINES)}, not {shown(engine)}")
        users = None
        if "users" in t and "concurrency" in t:
            problems.append(f"{at}: concurrency (per engine) or users (all engines), not both")
        if "users" in t:  # every engine runs one user at least
            users = integer(f"{at}.users", t["users"], engines,
                            b.max_threads_per_engine * engines)  # fmt: skip
            threads = -(-users // engines)
        else:
            threads = integer(f"{at}.concurrency", t.get("concurrency"), 1,
                              b.max_threads_per_engine)  # fmt: skip
        plans.append(
            ExecutionPlan(
                plan_id=plan_id,
                name=text_of(f"{at}.name", t.get("name")),
                engine=engine if engine in ENGINES else "jmeter",
                engines=engines,
                threads_per_engine=threads,
                users=users,
                ramp_up_s=ramp_up_s,
                duration_s=duration_s,
                csv_split=flag(f"{at}.csv_split", t.get("csv_split")),
                properties=properties_of(f"{at}.properties", t.get("properties"), problems),
                env=properties_of(f"{at}.env", t.get("env"), problems, env=True),
            )
        )
    if plans:
        problems += window_problems("thresholds", thresholds, max(p.duration_s for p in plans))
    csv_split = flag("csv_split", top.get("csv_split"))
    properties = properties_of("properties", top.get("properties"), problems)
    env = properties_of("env", top.get("env"), problems, env=True)
    if problems:
        raise ConfigError(problems)
    return CollectionConfig(
        name=str(name).strip(),
        project_id=project_id,
        collection_id=collection_id,
        csv_split=csv_split,
        thresholds=list(thresholds),
        plans=plans,
        properties=properties,
        env=env,
    )


def criteria_problems(texts: list[str]) -> list[str]:
    """Every criterion that does not parse, with where; too many criteria are one problem."""
    if len(texts) > MAX_CRITERIA:
        return [f"thresholds: at most {MAX_CRITERIA} criteria, not {len(texts)}"]
    problems = []
    for i, text in enumerate(texts):
        try:
            parse(text)
        except CriterionError as exc:
            problems.append(f"thresholds[{i}]: {exc}")
    return problems


def render_config(config: CollectionConfig) -> str:
    tests = []
    for p in config.plans:
        test: dict[str, Any] = {"name": p.name, "testid": p.plan_id}
        if p.engine != "jmeter":
            test["engine"] = p.engine
        if p.users is None:
            test["concurrency"] = p.threads_per_engine
        else:
            test["users"] = p.users
        test |= {"rampup": p.ramp_up_s, "engines": p.engines}
        if p.duration_s % 60:
            test["duration_s"] = p.duration_s
        else:
            test["duration"] = p.duration_s // 60
        test["csv_split"] = p.csv_split
        if p.properties:
            test["properties"] = p.properties
        if p.env:
            test["env"] = p.env
        tests.append(test)
    doc = {
        "multi-test": {
            "name": config.name,
            "projectid": config.project_id,
            "collectionid": config.collection_id,
            "csv_split": config.csv_split,
            "thresholds": config.thresholds,
            **({"properties": config.properties} if config.properties else {}),
            **({"env": config.env} if config.env else {}),
            "tests": tests,
        }
    }
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
