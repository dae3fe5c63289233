"""Plans per engine type: the config names the engine and the users, the engines take their
share, the API checks a locustfile without running it."""

from __future__ import annotations

from pathlib import Path

import pytest

from control.errors import InvalidError
from control.services.config import ConfigError, parse_config, render_config
from control.services.jmx import check_python
from engine_sidecar.engines import users_of
from engine_sidecar.errors import PlanError
from engine_sidecar.rundir import RunDir
from wire import EngineKind, StartEngines


def _config(test: str) -> str:
    return ("multi-test:\n  name: c\n  projectid: 1\n  collectionid: 2\n  tests:\n"
            f"    - {{testid: 3, engines: 3, duration_s: 60, {test}}}\n")  # fmt: skip


def test_the_engine_and_the_users_of_a_plan_round_trip() -> None:
    config = parse_config(_config("engine: locust, users: 7"))
    [plan] = config.plans
    assert (plan.engine, plan.users, plan.threads_per_engine) == ("locust", 7, 3)
    again = parse_config(render_config(config))
    assert again.plans == config.plans
    [jmeter] = parse_config(_config("concurrency: 5")).plans
    assert (jmeter.engine, jmeter.users, jmeter.threads_per_engine) == ("jmeter", None, 5)


@pytest.mark.parametrize(
    ("test", "problem"),
    [
        ("engine: k6, concurrency: 1", "tests[0].engine: one of jmeter, locust, gatling, not 'k6'"),
        ("users: 2", "tests[0].users: 3 to 15,000, not 2"),
        ("users: 9, concurrency: 3",
         "tests[0]: concurrency (per engine) or users (all engines), not both"),
    ],
)  # fmt: skip
def test_a_bad_engine_or_users_is_named(test: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(_config(test))
    assert refused.value.problems == [problem]


def _start(users: int | None) -> StartEngines:
    return StartEngines(command_id="c", collection_id="1", run_id="r", plan_id="p",
                        engine_count=3, threads_per_engine=4, duration_s=10, issued_ms=0,
                        engine=EngineKind.LOCUST, users=users)  # fmt: skip


def test_users_are_divided_with_the_remainder_on_the_first_engines() -> None:
    assert [users_of(_start(7), i) for i in range(3)] == [3, 2, 2]
    assert [users_of(_start(9), i) for i in range(3)] == [3, 3, 3]
    assert [users_of(_start(None), i) for i in range(3)] == [4, 4, 4]


def test_a_locustfile_is_parsed_never_run(tmp_path: Path) -> None:
    good = tmp_path / "locustfile.py"
    good.write_text("raise SystemExit('never run')\nclass U: pass\n")
    check_python(good, good.name)
    bad = tmp_path / "bad.py"
    bad.write_text("def f(:\n")
    with pytest.raises(InvalidError, match=r"bad.py is not Python that parses: .*\(line 1\)"):
        check_python(bad, bad.name)
    latin = tmp_path / "latin.py"
    latin.write_bytes(b"x = '\xe9'\n")
    with pytest.raises(InvalidError, match="not UTF-8"):
        check_python(latin, latin.name)


def test_the_engines_plan_file_is_the_one_of_its_kind_or_the_preferred(tmp_path: Path) -> None:
    run = RunDir(tmp_path, "r")
    run.path.mkdir(parents=True)
    with pytest.raises(PlanError, match=r"the plan has no locustfile \(\.py\)"):
        run.main_file(".py", "locustfile (.py)")
    (run.path / "helpers.py").write_text("")
    assert run.main_file(".py", "x", "locustfile.py") == run.path / "helpers.py"
    (run.path / "shop.py").write_text("")
    with pytest.raises(PlanError, match=r"has 2 x files and none is named locustfile\.py: helpers"):
        run.main_file(".py", "x", "locustfile.py")
    (run.path / "locustfile.py").write_text("")
    assert run.main_file(".py", "x", "locustfile.py") == run.path / "locustfile.py"
