"""The API's answers as :class:`~shibuya.output.Rows`: a run's report and verdicts, a comparison
of two runs, a collection's engines, listings of projects, plans, collections and runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from control.results import numbers as v
from shibuya.output import Rows


def verdicts(run: dict[str, Any]) -> Rows:
    """Per criterion: its verdict, the value against the threshold, the seconds and samples it
    rests on, when it breached (time and offset into the run), and any note."""
    title = f"run {run['id']}: {run.get('outcome') or run.get('state')} — {run.get('reason', '')}"
    grid = Rows(title, v.VERDICT_COLUMNS, numeric=frozenset({"value", "threshold"}))
    for c in run.get("criteria", []):
        grid.add(*v.verdict_cells(c, run))
    if not grid.rows:
        grid.add("(no criteria)", "nothing judged", "", "", "", "", "")
    return grid


def codes(counts: dict[str, int]) -> str:
    """Response codes and their counts."""
    return " ".join(f"{v.code_name(k)}:{n}" for k, n in sorted(counts.items()))


def report(answer: dict[str, Any]) -> Rows:
    """Per label: samples, errors, rate, percentiles, max, codes; the whole run last."""
    run = answer["run"]
    grid = Rows(f"run {run['id']}: {run.get('outcome') or run['state']}",
                [*v.LABEL_COLUMNS, "codes"], numeric=frozenset(v.LABEL_COLUMNS[1:]))  # fmt: skip
    for s in answer["labels"]:
        grid.add(*v.label_cells(s["label"], s), codes(s["codes"]))
    if answer["total"] is not None:
        grid.add(*v.label_cells("all labels", answer["total"]), codes(answer["total"]["codes"]))
        grid.total = 1
    return grid


def failures(answer: dict[str, Any], per_label: int = 10) -> Rows | None:
    """Per label, its most frequent failure messages: count and share of its failures."""
    grid = Rows(f"run {answer['run']['id']}: failures by message", ["label", "message",
                "failures", "share"], numeric=frozenset({"failures", "share"}))  # fmt: skip
    for s in answer["labels"]:
        messages = list(s.get("failure_messages", {}).items())
        for message, n in messages[:per_label]:
            grid.add(s["label"], message, f"{n:,}", f"{n / s['failures']:.1%}")
        rest = messages[per_label:]
        if rest:
            n = sum(k for _, k in rest)
            grid.add(s["label"], f"({len(rest)} more messages)", f"{n:,}",
                     f"{n / s['failures']:.1%}")  # fmt: skip
    return grid if grid.rows else None


def comparison(answer: dict[str, Any]) -> Rows:
    """Per label, each measure as a → b (change)."""
    measures = ("samples", "rps", "error_rate", "p50", "p95", "p99")
    columns = ["label", *(m if m in ("samples", "rps", "error_rate") else f"{m} ms"
                          for m in measures)]  # fmt: skip
    grid = Rows(f"{answer['a']['id']} (a) → {answer['b']['id']} (b)", columns,
                numeric=frozenset(columns[1:]), total=1)  # fmt: skip

    for row in [*answer["labels"], answer["total"]]:
        name = row["label"] if row["label"] is not None else "all labels"
        grid.add(name, *(v.change(row["changes"][m], m) for m in measures))
    return grid


def status(answer: dict[str, Any], name: str | None = None) -> Rows:
    """Per plan: engines asked for, deployed, ready, running; then each engine."""
    launch = answer.get("launch")
    since = f"launch {launch['id']} since {launch['launched_at']}" if launch else "not deployed"
    run = f", run {answer['run_id']} in progress" if answer.get("run_id") else ""
    title = f"collection {name or answer['collection_id']} ({answer['scheduler']}): {since}{run}"
    grid = Rows(title, ["plan", "engine", "phase", "state", "run", "threads", "CPU", "memory"],
                numeric=frozenset({"threads", "CPU", "memory"}))  # fmt: skip
    for p in answer["plans"]:
        grid.add(p["name"], f"{p['engines']} asked", f"{p['deployed']} deployed",
                 f"{p['ready']} ready", f"{p['running']} running", "", "", "")  # fmt: skip
        for e in answer["engines"]:
            if e["plan_id"] == str(p["plan_id"]):
                cpu = None if e["cpu_cores"] is None else f"{e['cpu_cores']:.2f}"
                mem = None if e["memory_bytes"] is None else f"{e['memory_bytes'] / 2**20:,.0f} MiB"
                grid.add(p["name"], e["index"], e["phase"], e["state"] or "not heard",
                         e["run_id"], e["threads"], cpu, mem)  # fmt: skip
    return grid


def when(text: str | None) -> str:
    """An API timestamp as ``YYYY-MM-DD HH:MM:SS`` (UTC), for people."""
    if not text:
        return ""
    return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M:%S")


def runs(items: list[dict[str, Any]], collection: str) -> Rows:
    """A collection's history: id, start, duration, samples, verdict, newest first."""
    grid = Rows(f"runs of {collection}", ["run", "started (UTC)", "duration s", "samples",
                                          "errors", "verdict"],
                numeric=frozenset({"duration s", "samples", "errors"}))  # fmt: skip
    for r in items:
        seconds = None
        if r.get("ended_at"):
            delta = datetime.fromisoformat(r["ended_at"]) - datetime.fromisoformat(r["started_at"])
            seconds = f"{delta.total_seconds():,.0f}"
        grid.add(r["id"], when(r["started_at"]), seconds, f"{r.get('samples', 0):,}",
                 f"{r.get('failures', 0):,}", verdict(r))  # fmt: skip
    return grid


def verdict(run: dict[str, Any]) -> str:
    """One word for a run (:func:`control.results.numbers.verdict`)."""
    return v.verdict(run)
