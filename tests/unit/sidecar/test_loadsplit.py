"""A plan's own targets divided among engines: counts with the remainder spread (the sum is the
whole), rates evenly, expressions left whole."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement, tostring

import pytest
from defusedxml.ElementTree import fromstring

from engine_sidecar import loadsplit
from engine_sidecar.loadsplit import count_share, rate_share
from engine_sidecar.plan import rewrite_jmx


@pytest.mark.parametrize(("total", "engines"), [(7, 3), (2, 3), (100, 7), (0, 2), (5, 1)])
def test_counts_add_up_to_the_whole_the_first_engines_taking_the_rest(
    total: int, engines: int
) -> None:
    shares = [int(count_share(str(total), engines, i)) for i in range(engines)]
    assert sum(shares) == total
    assert max(shares) - min(shares) <= 1
    assert shares == sorted(shares, reverse=True)


def test_rates_divide_evenly_and_expressions_stay_whole() -> None:
    assert [rate_share(v, 4) for v in ("10", "2.5", "1", "0")] == ["2.5", "0.625", "0.25", "0"]
    assert rate_share("10", 3) == "3.333333"
    assert count_share("${__P(users,10)}", 3, 0) == "${__P(users,10)}"
    assert rate_share("${__P(rps)}", 3) == "${__P(rps)}"


def _group(tag: str, **props: str) -> Element:
    el = Element(tag)
    for name, value in props.items():
        SubElement(el, "stringProp", name=name).text = value
    return el


def _table(parent: Element, name: str, rows: list[list[str]]) -> None:
    table = SubElement(parent, "collectionProp", name=name)
    for i, row in enumerate(rows):
        r = SubElement(table, "collectionProp", name=str(i))
        for value in row:
            SubElement(r, "stringProp", name="x").text = value


def _values(el: Element, name: str) -> list[str]:
    return [p.text or "" for p in el.iter("stringProp") if p.get("name") == name]


def test_every_plugin_thread_group_and_the_shaping_timer_are_divided() -> None:
    tree = Element("hashTree")
    tree.append(_group(loadsplit.CONCURRENCY, TargetLevel="10", RampUp="60", Hold="300"))
    tree.append(_group(loadsplit.ARRIVALS, TargetLevel="9", ConcurrencyLimit="2"))
    tree.append(_group(loadsplit.STEPPING, **{"ThreadGroup.num_threads": "8",
                                              "Start users count": "4"}))  # fmt: skip
    tree.append(
        _group(
            loadsplit.OPEN_MODEL,
            **{"OpenModelThreadGroup.schedule": "rate(0/min) random_arrivals(1 min) rate(120/min)"},
        )
    )
    ultimate = SubElement(tree, loadsplit.ULTIMATE)
    _table(
        ultimate,
        "ultimatethreadgroupdata",
        [["10", "0", "30", "60", "10"], ["5", "60", "0", "60", "0"]],
    )
    free_form = SubElement(tree, loadsplit.FREE_FORM)
    _table(free_form, "Schedule", [["0", "30", "60"], ["30", "30", "120"]])
    timer = SubElement(SubElement(tree, "hashTree"), loadsplit.SHAPING_TIMER)
    _table(timer, "load_profile", [["10", "100", "60"]])

    assert loadsplit.split(tree, engines=3, index=2) == 7
    assert _values(tree[0], "TargetLevel") == ["3"]  # 10 = 4 + 3 + 3
    assert _values(tree[0], "RampUp") == ["60"]  # time is not divided
    assert _values(tree[1], "TargetLevel") == ["3"]
    assert _values(tree[1], "ConcurrencyLimit") == ["1"]  # 2 = 1 + 1 + 0, but never 0
    assert _values(tree[2], "ThreadGroup.num_threads") == ["2"]
    assert _values(tree[2], "Start users count") == ["1"]
    assert _values(tree[3], "OpenModelThreadGroup.schedule") == [
        "rate(0/min) random_arrivals(1 min) rate(40/min)"]  # fmt: skip
    assert [v.text for v in ultimate.iter("stringProp")] == ["3", "0", "30", "60", "10",
                                                             "1", "60", "0", "60", "0"]  # fmt: skip
    assert [v.text for v in free_form.iter("stringProp")] == ["0", "10", "60", "10", "10", "120"]
    assert [v.text for v in timer.iter("stringProp")] == ["3.333333", "33.333333", "60"]


def test_one_engine_runs_the_plan_as_written_and_classic_groups_get_the_collections_threads() -> (
    None
):
    jmx = (b"<jmeterTestPlan><hashTree><TestPlan/><hashTree>"
           b'<com.blazemeter.jmeter.threads.concurrency.ConcurrencyThreadGroup testname="c">'
           b'<stringProp name="TargetLevel">10</stringProp>'
           b"</com.blazemeter.jmeter.threads.concurrency.ConcurrencyThreadGroup><hashTree/>"
           b'<ThreadGroup testname="t"><stringProp name="ThreadGroup.num_threads">1</stringProp>'
           b"</ThreadGroup><hashTree/></hashTree></hashTree></jmeterTestPlan>")  # fmt: skip
    alone = fromstring(rewrite_jmx(jmx, threads=50, ramp_up_s=0, duration_s=60))
    assert _values(alone, "TargetLevel") == ["10"]
    assert _values(alone, "ThreadGroup.num_threads") == ["50"]
    third = fromstring(rewrite_jmx(jmx, threads=50, ramp_up_s=0, duration_s=60, engines=3,
                                   index=0))  # fmt: skip
    assert _values(third, "TargetLevel") == ["4"]
    assert _values(third, "ThreadGroup.num_threads") == ["50"]  # threads per engine, as configured
    assert tostring(third).count(b"ConcurrencyThreadGroup") == 2
