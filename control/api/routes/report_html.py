"""A run's report as one self-contained HTML file (control/results/html.py): the run found on
behalf of the caller, like every results route; with ``baseline``, compared with that run (the
caller's too) and gated by ``max_regression`` limits."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from control.api.deps import Ctx, Who
from control.api.errors import RESPONSES
from control.api.routes.results import comparison_out, report_out, second_out
from control.api.routes.runs import RunId
from control.errors import InvalidError
from control.results.gates import LimitError, gates, parse_limit
from control.results.html import CSP, Page, render
from control.services.runs import current

router = APIRouter(prefix="/api", tags=["results"], responses=RESPONSES)

#: Labels drawn on demand at most (the most samples first): each is a query and its data inline.
MAX_CHARTED_LABELS = 50


@router.get("/runs/{run_id}/report.html", response_class=HTMLResponse,
            responses={200: {"content": {"text/html": {}}}})  # fmt: skip
async def report_html(
    run_id: RunId,
    ctx: Ctx,
    who: Who,
    baseline: Annotated[
        str | None, Query(pattern=r"^run-[0-9a-f]{12}$", description="a run to compare with")
    ] = None,
    max_regression: Annotated[
        list[str] | None,
        Query(max_length=20, description="with baseline: e.g. 'p95(elapsed) 10%' (repeatable)"),
    ] = None,
) -> HTMLResponse:
    """The run, its verdicts, per-label table, charts over time, response codes, top failure
    messages, engines' CPU and memory — and the comparison with ``baseline`` — in one HTML file
    that needs no network to open."""
    try:
        limits = [parse_limit(text) for text in max_regression or []]
    except LimitError as exc:
        raise InvalidError(str(exc)) from exc
    if limits and baseline is None:
        raise InvalidError("max_regression needs a baseline")
    run = await current(ctx.runs, ctx.results, who, run_id)
    report = await report_out(ctx, run)
    results = ctx.results
    busiest = sorted(report.labels, key=lambda s: -s.samples)[:MAX_CHARTED_LABELS]
    page = Page(
        report=report.model_dump(mode="json"),
        series=[second_out(s).model_dump(mode="json") for s in await results.series(run_id)],
        label_series={
            s.label or "": [
                second_out(r).model_dump(mode="json")
                for r in await results.series(run_id, label=s.label)
            ]
            for s in busiest
        },
        engines=await results.engine_usage(run_id),
    )
    if baseline is not None:
        other = await current(ctx.runs, results, who, baseline)
        page.comparison = (await comparison_out(ctx, other, run)).model_dump(mode="json")
        page.gates = gates(page.comparison, limits)
    return HTMLResponse(render(page), headers={
        "Content-Security-Policy": CSP,
        "Content-Disposition": f'inline; filename="{run_id}.html"',
    })  # fmt: skip
