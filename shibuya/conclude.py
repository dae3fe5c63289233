"""The end of ``shibuya run`` and ``shibuya report``: a run's report and verdicts, compared with a
baseline when asked (and gated by regression limits), printed, written as the files CI keeps
(JUnit XML, Markdown, HTML) — and the exit code they add up to."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from control.results.gates import GATE_COLUMNS, Limit, gate_cells, gates
from shibuya import client, tables, verdicts
from shibuya.output import Format, Rows, emit, to_markdown

RUN_ID = re.compile(r"run-[0-9a-f]{12}")
LAST_PASSED = "last-passed"


@dataclass(frozen=True)
class Ask:
    """What the caller wants beyond the printed report."""

    fmt: Format = Format.table
    junit: Path | None = None
    markdown: Path | None = None
    html: Path | None = None
    baseline: str | None = None
    """A run's id, or ``last-passed``."""
    limits: list[Limit] = field(default_factory=list)


def conclude(c: httpx.Client, run_id: str, ask: Ask) -> int:
    """Print the run's report (and its comparison with the baseline), write the files asked
    for, and return the exit code of its verdicts and gates."""
    from rich.console import Console

    report = client.call(c, "GET", f"/api/runs/{run_id}/report")
    run = report["run"]
    comparison, judged, base = None, [], None
    if ask.baseline is not None:
        base = baseline_of(c, ask.baseline, run)
        comparison = client.call(c, "GET", f"/api/runs/{base}/compare/{run_id}")
        judged = gates(comparison, ask.limits)
    grids = [tables.report(report), tables.verdicts(run)]
    by_message = tables.failures(report)
    if by_message is not None:
        grids.insert(1, by_message)
    answer = report
    if comparison is not None:
        grids.append(tables.comparison(comparison))
        if judged:
            grids.append(gate_rows(judged, comparison))
        answer = {**report, "baseline": {"comparison": comparison, "gates": judged}}
    emit(Console(), answer, grids, ask.fmt)
    for path in (ask.junit, ask.markdown, ask.html):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
    if ask.junit is not None:
        ask.junit.write_text(verdicts.junit(report, judged), encoding="utf-8")
    if ask.markdown is not None:
        ask.markdown.write_text("\n".join(map(to_markdown, grids)), encoding="utf-8")
    if ask.html is not None:
        params = {"baseline": base, "max_regression": [limit.text for limit in ask.limits]}
        page = client.request(c, "GET", f"/api/runs/{run_id}/report.html", params=params)
        ask.html.write_bytes(page.content)
    return client.exit_code(run, judged)


def baseline_of(c: httpx.Client, ref: str, run: dict[str, Any]) -> str:
    """The baseline's run id: ``ref`` itself, or with ``last-passed`` the newest run of the same
    collection, started before ``run``, that passed."""
    if RUN_ID.fullmatch(ref):
        return ref
    if ref != LAST_PASSED:
        raise client.ClientError(f"baseline {ref[:40]!r}: a run's id (run-…) or {LAST_PASSED}")
    offset = 0
    while True:
        page = client.call(c, "GET", f"/api/collections/{run['collection_id']}/runs",
                           params={"limit": 200, "offset": offset})  # fmt: skip
        for r in page["items"]:
            earlier = r["id"] != run["id"] and r["started_at"] < run["started_at"]
            if earlier and tables.verdict(r) == "passed":
                return str(r["id"])
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            raise client.ClientError(f"no earlier run of collection {run['collection_id']} "
                                     "passed: there is no baseline to compare with")  # fmt: skip


def gate_rows(judged: list[dict[str, Any]], comparison: dict[str, Any]) -> Rows:
    grid = Rows(f"regression limits against {comparison['a']['id']}", GATE_COLUMNS)
    for g in judged:
        grid.add(*gate_cells(g))
    return grid
