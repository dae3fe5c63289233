"""Config as code read offline (`shibuya validate`): a corpus of broken declarations, each refused
with every problem and where it is; a good one read exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from control.services.config import ConfigError
from shibuya.declare import Declared, load

JMX = (Path(__file__).parents[3] / "examples" / "two-samplers.jmx").read_text()
GOOD = """
project: shop
plans:
  - {name: browse, files: [browse.jmx, users.csv]}
collections:
  - name: checkout
    criteria: ["p95(elapsed) > 500ms for 30s"]
    properties: {target.host: staging.example, target.port: 8443, tls: true}
    plans:
      - {plan: browse, engines: 3, threads: 50, ramp_up: 1m, duration: 1h30m, csv_split: true,
         properties: {think.ms: 200}}
"""


def _load(tmp_path: Path, text: str) -> Declared | str:
    (tmp_path / "browse.jmx").write_text(JMX)
    (tmp_path / "users.csv").write_text("user\nann\n")
    path = tmp_path / "shop.yaml"
    path.write_text(text)
    return load(path)


def test_a_good_declaration_reads_exactly(tmp_path: Path) -> None:
    d = _load(tmp_path, GOOD)
    assert isinstance(d, Declared)
    [c] = d.spec.collections
    assert c.properties == {"target.host": "staging.example", "target.port": "8443", "tls": "true"}
    [run] = c.plans
    assert (run.engines, run.threads, run.ramp_up, run.duration) == (3, 50, 60, 5400)
    assert run.properties == {"think.ms": "200"}
    assert d.files(d.spec.plans[0]) == [tmp_path / "browse.jmx", tmp_path / "users.csv"]


BROKEN = [
    ("project: [shop]", ["project: Input should be a valid string"]),
    ("projekt: shop", ["projekt: unknown key; did you mean 'project'?", "project: required"]),
    (
        GOOD.replace("threads: 50", "thread: 50"),
        [
            "collections[0].plans[0].thread: unknown key; did you mean 'threads'?",
            "collections[0].plans[0].threads: required",
        ],
    ),
    (
        GOOD.replace("csv_split: true", 'csv_split: "no"'),
        ["collections[0].plans[0].csv_split: Input should be a valid boolean"],
    ),
    (
        GOOD.replace("engines: 3", 'engines: "3"'),
        ["collections[0].plans[0].engines: Input should be a valid integer"],
    ),
    (
        GOOD.replace("engines: 3", "engines: 0"),
        ["collections[0].plans[0].engines: Input should be greater than or equal to 1"],
    ),
    (
        GOOD.replace("duration: 1h30m", "duration: 10x"),
        [
            "collections[0].plans[0].duration: a duration like 90s, 10m or 1h30m is needed, "
            "not '10x'"
        ],
    ),
    (
        GOOD.replace("ramp_up: 1m", "ramp_up: 2h"),
        ["collections[0].plans[0].ramp_up: 7200 s, longer than the duration (5400 s)"],
    ),
    (
        GOOD.replace("ramp_up: 1m, duration: 1h30m", "ramp_up: 0s, duration: 20s"),
        ["collections[0].criteria[0]: its window (30 s) is longer than the run (20 s)"],
    ),
    (
        GOOD.replace("p95(elapsed)", "p77(elapsed)"),
        [
            "collections[0].criteria[0]: criterion 'p77(elapsed) > 500ms for 30s': expected a "
            "measure: p50..p99.9(field), avg(field), max(field), error_rate, rps, failures at "
            "position 1 ('p77(elapsed)')"
        ],
    ),
    (
        GOOD.replace("plan: browse", "plan: brows"),
        ["collections[0].plans[0].plan: no plan 'brows' is declared (declared: browse)"],
    ),
    (
        GOOD.replace("users.csv]", "users.csv, missing.csv]"),
        ["plans[0].files[2]: missing.csv is not a file (relative to {tmp})"],
    ),
    (
        GOOD.replace("users.csv]", "users.csv, tool.exe]"),
        [
            "plans[0].files[2]: tool.exe: a plan takes one .jmx (JMeter), .py files (Locust) or "
            ".java files (Gatling), and data files (.csv, .dat, .json, .tsv, .txt)"
        ],
    ),
    (
        GOOD.replace("[browse.jmx, users.csv]", "[users.csv]"),
        [
            "plans[0].files: one .jmx (JMeter), .py files (Locust) or .java files (Gatling) are "
            "needed, not 0 .jmx"
        ],
    ),
    (
        GOOD.replace("target.host:", "'bad name':"),
        [
            "collections[0].properties.bad name.[key]: String should match pattern "
            "'^[A-Za-z0-9_][A-Za-z0-9_.\\-]{0,99}$'"
        ],
    ),
    (
        GOOD
        + "  - {name: checkout, plans: [{plan: browse, engines: 1, threads: 1, duration: 5}]}\n",
        ["collections[1].name: 'checkout' is declared twice"],
    ),
    (
        "project: shop\n  bad: indentation\n",
        ["not YAML: line 2: mapping values are not allowed here"],
    ),
    ("a: &x [1]\nb: *x\n", ["line 2: YAML aliases (*name) are not accepted"]),
    ("- just\n- a list\n", ["the document needs a mapping with 'project' (or 'multi-test')"]),
]


@pytest.mark.parametrize(("text", "problems"), BROKEN)
def test_each_broken_declaration_is_refused_saying_where_and_why(
    tmp_path: Path, text: str, problems: list[str]
) -> None:
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, text)
    assert refused.value.problems == [p.replace("{tmp}", str(tmp_path)) for p in problems]


def test_a_jmx_the_engines_would_refuse_is_refused_offline(tmp_path: Path) -> None:
    text = GOOD
    (tmp_path / "browse.jmx").write_text(JMX)
    path = tmp_path / "shop.yaml"
    path.write_text(text)
    (tmp_path / "users.csv").write_text("u\n")
    (tmp_path / "browse.jmx").write_text(
        '<?xml version="1.0"?><jmeterTestPlan><hashTree>'
        "<TestPlan/><hashTree/></hashTree></jmeterTestPlan>"
    )
    with pytest.raises(ConfigError) as refused:
        load(path)
    assert refused.value.problems == [
        "plans[0].files[0]: browse.jmx: no thread group at its top level: it would run nothing"
    ]


def test_a_multi_test_config_is_checked_as_the_api_checks_it(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "multi-test:\n  name: c\n  projectid: 1\n  collectionid: 2\n  tests:\n"
        "    - {testid: 3, concurency: 2, engines: 1, duration: 1, duration_s: 60}\n"
    )
    with pytest.raises(ConfigError) as refused:
        load(path)
    assert refused.value.problems == [
        "tests[0].concurency: unknown key; did you mean 'concurrency'?",
        "tests[0]: duration (minutes) or duration_s (seconds), not both",
        "tests[0].concurrency: a whole number is needed, not None",
    ]
