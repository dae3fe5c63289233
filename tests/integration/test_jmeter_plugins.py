"""The jmeter-plugins the engines ship: what the API accepts is what the jars hold, and a plan
with a Concurrency Thread Group, a function of the pack and a run property runs on 3 engines,
its target concurrency divided among them, every sample counted."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from control.services.jmx import JMETER_FUNCTIONS, PLUGIN_ELEMENTS, PLUGIN_FUNCTIONS
from shibuya.dev import jmeter
from tests.support.api import JMX
from tests.support.local_runs import Bus, Load, run_on_local_engines

pytestmark = pytest.mark.integration


def _in_jars(jars: list[Path], package: str = "") -> tuple[set[str], set[str]]:
    """The classes and the ``__function`` names the jars' class files (in ``package``) hold."""
    classes, functions = set(), set()
    for jar in jars:
        with zipfile.ZipFile(jar) as z:
            for entry in z.namelist():
                if entry.endswith(".class") and "$" not in entry and entry.startswith(package):
                    classes.add(entry[:-6].replace("/", "."))
                    functions |= set(re.findall(rb"__[A-Za-z0-9]+", z.read(entry)))
    return classes, {f.decode() for f in functions}


def test_what_the_api_accepts_is_what_the_engines_have() -> None:
    ext = jmeter.install() / "lib" / "ext"
    plugins = sorted(ext.glob("jmeter-plugins-*.jar"))
    assert [p.name for p in plugins] == [
        f"{a}-{v}.jar" for _, a, v in sorted(jmeter.PLUGINS, key=lambda d: d[1])
    ]
    classes, functions = _in_jars(plugins)
    assert classes >= PLUGIN_ELEMENTS
    assert functions >= PLUGIN_FUNCTIONS - {"__strReplaceRegex"}  # its name is built at runtime
    core = sorted(ext.glob("ApacheJMeter_functions-*.jar")) + sorted(
        ext.glob("ApacheJMeter_core-*.jar")
    )
    _, core_functions = _in_jars(core, "org/apache/jmeter/functions/")
    assert core_functions - {"__Beanshell"} == JMETER_FUNCTIONS  # one is only a message's


CTG = "com.blazemeter.jmeter.threads.concurrency.ConcurrencyThreadGroup"
#: two-samplers.jmx with a Concurrency Thread Group of 7 threads held 5 s (the engines end on
#: their own, each 5 s after its own start), and labels that show a function of the pack and a
#: property of the run.
PLAN = re.sub(
    rb'<ThreadGroup guiclass="ThreadGroupGui" testclass="ThreadGroup" testname="users">.*?'
    rb"</ThreadGroup>",
    f'<{CTG} guiclass="{CTG}Gui" testclass="{CTG}" testname="users">'
    '<elementProp name="ThreadGroup.main_controller" '
    'elementType="com.blazemeter.jmeter.control.VirtualUserController"/>'
    '<stringProp name="ThreadGroup.on_sample_error">continue</stringProp>'
    '<stringProp name="TargetLevel">7</stringProp><stringProp name="RampUp">0</stringProp>'
    '<stringProp name="Steps"></stringProp><stringProp name="Hold">5</stringProp>'
    '<stringProp name="Unit">S</stringProp>'
    f"</{CTG}>".encode(),
    JMX,
    flags=re.S,
).replace(b'testname="GET /items, &quot;all&quot;"',
          b'testname="GET ${__strLen(abcd)} ${__P(build,none)}"')  # fmt: skip


def test_a_concurrency_thread_group_is_divided_among_three_engines(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    assert PLAN.count(CTG.encode()) == 4  # its tag, guiclass, testclass, and closing tag
    load = Load(engines=3, jmx=PLAN, run_properties={"build": "b-42"})
    ran = run_on_local_engines(tmp_path, Bus(kafka_bootstrap), duration_s=5, test=load)
    assert ran.run["outcome"] == "finished", ran.run
    assert sorted(ran.threads) == [2, 2, 3]  # 7 = 3 + 2 + 2
    for labels in ran.labels:  # every engine (a slow one may not reach its POST)
        assert "GET 4 b-42" in labels
        assert labels <= {"GET 4 b-42", 'POST /login, "json"'}
    assert ran.run["samples"] == ran.written == ran.stored > 0
