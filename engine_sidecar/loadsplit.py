"""One engine's share of a plan's own load profile: the thread groups and timers whose targets are
in the JMX (not in the collection's threads per engine) are divided among the engines.

Pure functions on a parsed JMX. The rules (docs/engines.md has them for users):

* a count (threads, a concurrency) of ``n`` among ``e`` engines: engine ``i`` runs ``n // e``,
  plus one for the first ``n % e`` engines — the sum is ``n``, none is lost;
* a rate (arrivals, requests per second) is divided evenly: ``r / e`` each, fractions kept;
* a value that is not a plain number (``${__P(users,10)}``) is left whole: every engine runs it
  as written, so the run carries ``e`` times as much.

The classic ``ThreadGroup`` and ``SetupThreadGroup`` are not here: they run the collection's
threads per engine (:func:`engine_sidecar.plan.rewrite_jmx`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from xml.etree.ElementTree import Element

CONCURRENCY = "com.blazemeter.jmeter.threads.concurrency.ConcurrencyThreadGroup"
ARRIVALS = "com.blazemeter.jmeter.threads.arrivals.ArrivalsThreadGroup"
FREE_FORM = "com.blazemeter.jmeter.threads.arrivals.FreeFormArrivalsThreadGroup"
ULTIMATE = "kg.apc.jmeter.threads.UltimateThreadGroup"
STEPPING = "kg.apc.jmeter.threads.SteppingThreadGroup"
OPEN_MODEL = "OpenModelThreadGroup"
SHAPING_TIMER = "kg.apc.jmeter.timers.VariableThroughputTimer"


def count_share(value: str, engines: int, index: int) -> str:
    """Engine ``index``'s share of a count, as text; a value not a whole number, unchanged."""
    text = value.strip()
    if not text.isdigit():
        return value
    base, extra = divmod(int(text), engines)
    return str(base + (1 if index < extra else 0))


def rate_share(value: str, engines: int) -> str:
    """An engine's share of a rate, as text; a value not a plain number, unchanged."""
    text = value.strip()
    if not re.fullmatch(r"\d+(\.\d+)?", text):
        return value
    share = float(text) / engines
    return f"{share:.6f}".rstrip("0").rstrip(".") or "0"


def split(tree: Element, engines: int, index: int) -> int:
    """Divide, in place, every element of ``tree`` that has a rule; how many were divided."""
    if engines == 1:
        return 0
    divided = 0
    for el in tree.iter():
        rule = _RULES.get(el.tag)
        if rule is not None:
            rule(el, engines, index)
            divided += 1
    return divided


def _props(el: Element, name: str) -> list[Element]:
    return [p for p in el if p.get("name") == name and p.tag == "stringProp"]


def _count(*names: str) -> Callable[[Element, int, int], None]:
    def rule(el: Element, engines: int, index: int) -> None:
        for name in names:
            for prop in _props(el, name):
                prop.text = count_share(prop.text or "", engines, index)

    return rule


def _rows(el: Element, name: str) -> list[list[Element]]:
    """The rows of a table property (``collectionProp`` of ``collectionProp`` of values)."""
    tables = [p for p in el if p.get("name") == name and p.tag == "collectionProp"]
    return [[v for v in row if v.tag == "stringProp"] for t in tables for row in t
            if row.tag == "collectionProp"]  # fmt: skip


def _table(name: str, counts: tuple[int, ...], rates: tuple[int, ...],
           also: Callable[[Element, int, int], None] | None = None,
) -> Callable[[Element, int, int], None]:  # fmt: skip
    """Divide columns ``counts`` (as counts) and ``rates`` (as rates) of every row."""

    def rule(el: Element, engines: int, index: int) -> None:
        for row in _rows(el, name):
            for i in counts:
                if i < len(row):
                    row[i].text = count_share(row[i].text or "", engines, index)
            for i in rates:
                if i < len(row):
                    row[i].text = rate_share(row[i].text or "", engines)
        if also is not None:
            also(el, engines, index)

    return rule


def _arrivals(el: Element, engines: int, index: int) -> None:
    for prop in _props(el, "TargetLevel"):
        prop.text = rate_share(prop.text or "", engines)
    _limit(el, engines, index)


def _limit(el: Element, engines: int, index: int) -> None:
    """A concurrency limit: a count, but never 0 (0 means none)."""
    for prop in _props(el, "ConcurrencyLimit"):
        share = count_share(prop.text or "", engines, index)
        prop.text = "1" if share == "0" else share


_RATE = re.compile(r"(rate\(\s*)(\d+(?:\.\d+)?)")


def _open_model(el: Element, engines: int, index: int) -> None:
    del index
    for prop in _props(el, "OpenModelThreadGroup.schedule"):
        prop.text = _RATE.sub(lambda m: m[1] + rate_share(m[2], engines), prop.text or "")


_RULES: dict[str, Callable[[Element, int, int], None]] = {
    CONCURRENCY: _count("TargetLevel"),
    ARRIVALS: _arrivals,
    FREE_FORM: _table("Schedule", counts=(), rates=(0, 1), also=_limit),
    ULTIMATE: _table("ultimatethreadgroupdata", counts=(0,), rates=()),
    STEPPING: _count(
        "ThreadGroup.num_threads",
        "Start users count",
        "Start users count burst",
        "Stop users count",
    ),
    OPEN_MODEL: _open_model,
    SHAPING_TIMER: _table("load_profile", counts=(), rates=(0, 1)),
}
#: The thread groups a plan may have at its top level, besides the classic ones.
PLUGIN_GROUPS = frozenset({CONCURRENCY, ARRIVALS, FREE_FORM, ULTIMATE, STEPPING, OPEN_MODEL})
