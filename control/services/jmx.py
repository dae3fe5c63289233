"""A test plan checked at upload for what would make it fail when the run starts — or, worse,
run wrong without a word: what the engines cannot load, and functions JMeter would leave as text.

The engines run JMeter 5.6.3 with the jmeter-plugins of :data:`PLUGIN_ELEMENTS` and
:data:`PLUGIN_FUNCTIONS` (``shibuya/dev/jmeter.py`` installs them; a test compares these lists
with the jars). An element of another plugin, or a ``${__function(…)}`` neither JMeter nor those
plugins define, is refused with the element's name and the reason.
"""

from __future__ import annotations

import ast
import re
import zipfile
from pathlib import Path
from typing import Any

from defusedxml import DefusedXmlException, DTDForbidden, ElementTree

from control.errors import InvalidError

#: How deep a JMX may nest: a plan nests its controllers a few dozen levels at most.
MAX_JMX_DEPTH = 200
#: At most this many problems in one answer; at most this many entries in a plan's jar.
MAX_PROBLEMS, MAX_JAR_ENTRIES = 20, 100_000

#: Thread groups a test plan may have at its top level.
THREAD_GROUPS = frozenset({
    "ThreadGroup", "SetupThreadGroup", "PostThreadGroup", "OpenModelThreadGroup",
    "com.blazemeter.jmeter.threads.concurrency.ConcurrencyThreadGroup",
    "com.blazemeter.jmeter.threads.arrivals.ArrivalsThreadGroup",
    "com.blazemeter.jmeter.threads.arrivals.FreeFormArrivalsThreadGroup",
    "kg.apc.jmeter.threads.UltimateThreadGroup",
    "kg.apc.jmeter.threads.SteppingThreadGroup",
})  # fmt: skip
#: The test elements of the shipped plugins (their classes, as a JMX names them).
PLUGIN_ELEMENTS = frozenset({
    *(g for g in THREAD_GROUPS if "." in g),
    "com.blazemeter.jmeter.control.VirtualUserController",
    "kg.apc.jmeter.timers.VariableThroughputTimer",
})  # fmt: skip
#: Functions of JMeter 5.6.3 and of the shipped functions pack and Throughput Shaping Timer.
JMETER_FUNCTIONS = frozenset((
    "__BeanShell", "__CSVRead", "__FileToString", "__P", "__Random", "__RandomDate",
    "__RandomFromMultipleVars", "__RandomString", "__StringFromFile", "__StringToFile",
    "__TestPlanName", "__UUID", "__V", "__XPath", "__changeCase", "__char", "__counter",
    "__dateTimeConvert", "__digest", "__escapeHtml", "__escapeOroRegexpChars", "__escapeXml",
    "__eval", "__evalVar", "__groovy", "__intSum", "__isPropDefined", "__isVarDefined",
    "__javaScript", "__jexl2", "__jexl3", "__log", "__logn", "__longSum", "__machineIP",
    "__machineName", "__property", "__regexFunction", "__samplerName", "__setProperty", "__split",
    "__threadGroupName", "__threadNum", "__time", "__timeShift", "__unescape", "__unescapeHtml",
    "__urldecode", "__urlencode",
))  # fmt: skip
PLUGIN_FUNCTIONS = frozenset((
    "__MD5", "__base64Decode", "__base64Encode", "__caseFormat", "__chooseRandom", "__doubleSum",
    "__env", "__if", "__isDefined", "__iterationNum", "__lowercase", "__strLen", "__strReplace",
    "__strReplaceRegex", "__substring", "__tstFeedback", "__uppercase",
))  # fmt: skip
_FUNCTION = re.compile(r"\$\{(__\w+)\s*[(}]")
_SHIPPED = "the Custom Thread Groups, the functions pack and the Throughput Shaping Timer"


def check_jar(path: Path, name: str) -> None:
    """A plan's own jar: a zip of at most :data:`MAX_JAR_ENTRIES` entries."""
    try:
        with zipfile.ZipFile(path) as z:
            entries = len(z.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidError(f"{name} is not a jar: {exc}") from exc
    if entries > MAX_JAR_ENTRIES:
        raise InvalidError(f"{name}: more than {MAX_JAR_ENTRIES:,} entries")


def jar_code(jars: list[Path]) -> tuple[set[str], set[str]]:
    """The classes of ``jars`` and the ``__function`` names their class files hold."""
    classes: set[str] = set()
    functions: set[str] = set()
    for jar in jars:
        with zipfile.ZipFile(jar) as z:
            for entry in z.infolist():
                if entry.filename.endswith(".class") and entry.file_size < 1 << 20:
                    classes.add(entry.filename[:-6].replace("/", "."))
                    found = re.findall(rb"__[A-Za-z0-9]+", z.read(entry))
                    functions.update(f.decode() for f in found)
    return classes, functions


def check_jmx(path: Path, name: str, jars: list[Path] | None = None) -> None:
    """A JMeter test plan, read as a stream (memory stays flat whatever its size): no DOCTYPE
    (no entities), at most :data:`MAX_JMX_DEPTH` levels, ``<jmeterTestPlan>`` at the root, a
    thread group at the top level, and nothing the engines cannot run — with the plan's own
    ``jars`` where the server takes them."""
    classes, functions = jar_code(jars or [])
    problems: list[str] = []
    groups = 0
    open_elements: list[Any] = []
    named: list[str] = []  # the test element each open element belongs to
    try:
        for event, element in ElementTree.iterparse(path, events=("start", "end"),
                                                    forbid_dtd=True):  # fmt: skip
            if event == "end":  # what was read is not kept: the element leaves its parent
                problems += _functions(element.text, named[-1], functions)
                open_elements.pop()
                named.pop()
                if open_elements:
                    del open_elements[-1][-1]
                continue
            open_elements.append(element)
            named.append(element.get("testname") or (named[-1] if named else "the plan"))
            depth = len(open_elements)
            if depth == 1 and element.tag != "jmeterTestPlan":
                raise InvalidError(f"{name} is not a JMeter test plan: its root is "
                                   f"<{element.tag[:80]}>")  # fmt: skip
            if depth > MAX_JMX_DEPTH:
                raise InvalidError(f"{name}: nested deeper than {MAX_JMX_DEPTH} levels")
            groups += depth == 4 and element.tag in THREAD_GROUPS - {"PostThreadGroup"}
            problems += _element(element, named[-1], classes)
            problems += _functions(element.get("testname"), named[-1], functions)
    except DTDForbidden as exc:
        raise InvalidError(f"{name}: a DOCTYPE is not accepted in a test plan") from exc
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise InvalidError(f"{name} is not a JMeter test plan: {str(exc)[:200]}") from exc
    if not groups:
        problems.append("no thread group at its top level: it would run nothing")
    if problems:
        shown = [f"{name}: {p}" for p in dict.fromkeys(problems)][:MAX_PROBLEMS]
        raise InvalidError(shown[0], shown)


def _element(element: Any, testname: str, own: set[str]) -> list[str]:
    """An element of a plugin the engines do not have (nor the plan's ``own`` jars)."""
    out = []
    for cls in (element.tag, element.get("elementType") or ""):
        known = cls.startswith("org.apache.jmeter.") or cls in PLUGIN_ELEMENTS or cls in own
        if "." in cls and not known:
            out.append(f"element {testname[:80]!r} ({cls[:120]}) needs a plugin the engines do "
                       f"not have (they have {_SHIPPED})")  # fmt: skip
    return out


def _functions(text: str | None, testname: str, own: set[str]) -> list[str]:
    """Functions in ``text`` that JMeter would leave unevaluated, as literal text."""
    if not text or "${__" not in text:
        return []
    known = JMETER_FUNCTIONS | PLUGIN_FUNCTIONS | own
    return [f"function {f[:60]} in {testname[:80]!r} is not one JMeter 5.6.3 or the shipped "
            "plugins define: it would be sent as text"
            for f in _FUNCTION.findall(text) if f not in known]  # fmt: skip


def check_text(path: Path, name: str) -> str:
    """A source file must be UTF-8 text; its text."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidError(f"{name} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc


def check_python(path: Path, name: str) -> None:
    """A locustfile (or a module it imports) must be UTF-8 Python that parses. It is parsed,
    never run: its code runs on the engines only."""
    source = check_text(path, name)
    try:
        ast.parse(source, filename=name)
    except SyntaxError as exc:
        raise InvalidError(f"{name} is not Python that parses: {exc.msg} (line {exc.lineno})",
                           [f"line {exc.lineno}: {exc.msg}"]) from exc  # fmt: skip
    except (RecursionError, MemoryError, ValueError) as exc:
        raise InvalidError(f"{name} cannot be parsed as Python: {type(exc).__name__}") from exc
