"""Preparing a plan for one engine: its share of the CSV data, and the JMX rewritten for the run.

Pure functions on bytes.

CSV split (Shibuya's rules, improved): the rows of a file go to ``engines`` contiguous shares;
the first ``rows % engines`` shares get one row more, so no row is dropped; a header row, when
the file has one, heads every share instead of going to the first engine only. Rows are CSV
records: a quoted field may hold newlines. With fewer rows than engines some shares hold no row.

JMX rewrite (Shibuya's rules): every ``ThreadGroup`` and ``SetupThreadGroup`` directly under the
test plan gets the run's threads per engine, ramp-up, ``scheduler=true`` and the duration; the
plan's own targets elsewhere (the Custom Thread Groups, ``OpenModelThreadGroup``, the Throughput
Shaping Timer) are divided among the engines (:mod:`engine_sidecar.loadsplit`).
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement, tostring

from defusedxml.ElementTree import fromstring

from engine_sidecar import loadsplit
from engine_sidecar.errors import PlanError
from engine_sidecar.jtl import RecordSplitter


def csv_rows(data: bytes) -> list[bytes]:
    """The records of a CSV file, each with its line ending (a last one without is kept)."""
    split = RecordSplitter(max_record_bytes=len(data) + 1).split(data)
    rows, offset = [], 0
    for size in split.sizes:
        rows.append(data[offset : offset + size])
        offset += size
    if offset < len(data):
        rows.append(data[offset:])
    return rows


def split_csv(data: bytes, *, engines: int, index: int, header: bool) -> bytes:
    """Engine ``index``'s share of ``data`` among ``engines`` engines."""
    if not 0 <= index < engines:
        raise PlanError(f"engine index {index} is outside 0..{engines - 1}")
    rows = csv_rows(data)
    head: list[bytes] = []
    if header and rows:
        head, rows = rows[:1], rows[1:]
        if not head[0].endswith(b"\n"):
            head[0] += b"\n"
    base, extra = divmod(len(rows), engines)
    start = index * base + min(index, extra)
    share = rows[start : start + base + (1 if index < extra else 0)]
    if share and not share[-1].endswith(b"\n"):
        share[-1] += b"\n"
    return b"".join(head + share)


_THREAD_GROUPS = ("ThreadGroup", "SetupThreadGroup")


def rewrite_jmx(
    data: bytes, *, threads: int, ramp_up_s: int, duration_s: int, engines: int = 1,
    index: int = 0,
) -> bytes:  # fmt: skip
    """The JMX for engine ``index`` of ``engines``: every top-level classic thread group set to
    the run's load profile, and the plan's own targets (plugin thread groups, the Throughput
    Shaping Timer) divided among the engines (:mod:`engine_sidecar.loadsplit`)."""
    try:
        root = fromstring(data)
    except Exception as exc:  # defusedxml raises several kinds; all mean "not a plan we take"
        raise PlanError(f"the plan is not well-formed XML: {exc}") from exc
    plan_tree = _test_plan_tree(root)
    groups = [el for el in plan_tree if el.tag in _THREAD_GROUPS]
    if not groups and not any(el.tag in loadsplit.PLUGIN_GROUPS for el in plan_tree):
        raise PlanError("the test plan has no thread group at its top level (ThreadGroup, "
                        "SetupThreadGroup, OpenModelThreadGroup or one of the Custom Thread "
                        "Groups)")  # fmt: skip
    loadsplit.split(plan_tree, engines, index)
    for group in groups:
        _set(group, "stringProp", "ThreadGroup.num_threads", str(threads))
        _set(group, "stringProp", "ThreadGroup.ramp_time", str(ramp_up_s))
        _set(group, "boolProp", "ThreadGroup.scheduler", "true")
        _set(group, "stringProp", "ThreadGroup.duration", str(duration_s))
    body: bytes = tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def _test_plan_tree(root: Element) -> Element:
    """The ``hashTree`` that holds the test plan's children."""
    if root.tag != "jmeterTestPlan":
        raise PlanError(f"the root element is <{root.tag}>, not <jmeterTestPlan>")
    top = root.find("hashTree")
    if top is None:
        raise PlanError("the plan has no <hashTree>")
    children = list(top)
    for i, el in enumerate(children):
        if el.tag == "TestPlan" and i + 1 < len(children) and children[i + 1].tag == "hashTree":
            return children[i + 1]
    raise PlanError("the plan has no <TestPlan> followed by its <hashTree>")


def _set(group: Element, kind: str, name: str, value: str) -> None:
    for prop in group:
        if prop.get("name") == name:
            prop.tag = kind
            prop.text = value
            return
    SubElement(group, kind, name=name).text = value


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f", "=": "\\=",
            ":": "\\:", "#": "\\#", "!": "\\!"}  # fmt: skip


def properties_file(properties: dict[str, str]) -> bytes:
    """``properties`` as a Java properties file (what JMeter's ``-q`` reads, ISO-8859-1 with
    ``\\uXXXX`` escapes): any value comes back exactly, whatever its characters."""

    def escape(text: str, key: bool) -> str:
        out = []
        for i, ch in enumerate(text):
            if ch in _ESCAPES:
                out.append(_ESCAPES[ch])
            elif ch == " " and (key or i == 0):
                out.append("\\ ")
            elif " " <= ch <= "~":
                out.append(ch)
            else:  # as UTF-16 code units, as Java reads them
                units = ch.encode("utf-16-be")
                out += [f"\\u{units[j]:02x}{units[j + 1]:02x}" for j in range(0, len(units), 2)]
        return "".join(out)

    lines = [f"{escape(k, True)}={escape(v, False)}\n" for k, v in sorted(properties.items())]
    return "".join(lines).encode("ascii")
