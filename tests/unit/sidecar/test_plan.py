"""CSV split across engines and the JMX rewrite."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from defusedxml.ElementTree import fromstring

from engine_sidecar.errors import PlanError
from engine_sidecar.plan import csv_rows, rewrite_jmx, split_csv

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "two-samplers.jmx"


def _data(rows: int) -> bytes:
    body = [f'{i},"user {i}, ""quoted""","line\nbreak {i}"\n'.encode() for i in range(rows)]
    return b"id,name,note\n" + b"".join(body)


@pytest.mark.parametrize("engines", [1, 3, 7])
@pytest.mark.parametrize("rows", [0, 1, 5, 6, 20, 101])
def test_every_row_exactly_once_and_the_header_on_each_share(engines: int, rows: int) -> None:
    data = _data(rows)
    header, *all_rows = csv_rows(data)
    shares = [split_csv(data, engines=engines, index=k, header=True) for k in range(engines)]
    seen: Counter[bytes] = Counter()
    sizes = []
    for share in shares:
        got = csv_rows(share)
        assert got[0] == header
        seen.update(got[1:])
        sizes.append(len(got) - 1)
    assert seen == Counter(all_rows)
    assert max(sizes) - min(sizes) <= 1  # remainder rows are spread, none dropped
    assert sizes == sorted(sizes, reverse=True)


def test_without_a_header_the_first_row_is_data() -> None:
    data = b"a\nb\nc"  # and no newline at the end
    shares = [split_csv(data, engines=2, index=k, header=False) for k in range(2)]
    assert shares == [b"a\nb\n", b"c\n"]


def test_index_out_of_range() -> None:
    with pytest.raises(PlanError, match=r"outside 0\.\.2"):
        split_csv(b"a\n", engines=3, index=3, header=False)


def test_jmx_thread_groups_get_the_run_profile() -> None:
    out = rewrite_jmx(EXAMPLE.read_bytes(), threads=40, ramp_up_s=15, duration_s=300)
    root = fromstring(out)
    [group] = root.iter("ThreadGroup")
    props = {p.get("name"): (p.tag, p.text) for p in group}
    assert props["ThreadGroup.num_threads"] == ("stringProp", "40")
    assert props["ThreadGroup.ramp_time"] == ("stringProp", "15")
    assert props["ThreadGroup.scheduler"] == ("boolProp", "true")
    assert props["ThreadGroup.duration"] == ("stringProp", "300")
    # the samplers are untouched
    labels = [s.get("testname") for s in root.iter("HTTPSamplerProxy")]
    assert labels == ['GET /items, "all"', 'POST /login, "json"']


def test_missing_properties_are_added_and_setup_groups_included() -> None:
    jmx = (
        b"<jmeterTestPlan><hashTree><TestPlan/><hashTree>"
        b"<SetupThreadGroup><intProp name='ThreadGroup.num_threads'>1</intProp>"
        b"</SetupThreadGroup><hashTree/>"
        b"<ThreadGroup/><hashTree/></hashTree></hashTree></jmeterTestPlan>"
    )
    root = fromstring(rewrite_jmx(jmx, threads=3, ramp_up_s=0, duration_s=9))
    for tag in ("SetupThreadGroup", "ThreadGroup"):
        [group] = root.iter(tag)
        props = {p.get("name"): (p.tag, p.text) for p in group}
        assert props["ThreadGroup.num_threads"] == ("stringProp", "3")
        assert props["ThreadGroup.duration"] == ("stringProp", "9")


@pytest.mark.parametrize(
    ("jmx", "reason"),
    [
        (b"not xml", "not well-formed XML"),
        (b"<foo/>", "not <jmeterTestPlan>"),
        (
            b"<jmeterTestPlan><hashTree><TestPlan/><hashTree/></hashTree></jmeterTestPlan>",
            "no thread group",
        ),
        (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><jmeterTestPlan/>', "not well-formed XML"),
    ],
)
def test_bad_plans_are_refused_with_a_reason(jmx: bytes, reason: str) -> None:
    with pytest.raises(PlanError, match=reason):
        rewrite_jmx(jmx, threads=1, ramp_up_s=0, duration_s=1)
