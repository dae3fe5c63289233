"""A run's results from the stream's ClickHouse data: the per-second series, the report (per
label, with percentiles and response codes), a live stream (server-sent events) and the
comparison of two runs. Every route first finds the run on behalf of the caller.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter

from control.api.context import Context
from control.api.deps import Ctx, Who, shared_json
from control.api.errors import RESPONSES
from control.api.routes.runs import RunId
from control.errors import InvalidError
from control.result_schemas import (
    ChangeOut,
    ComparedOut,
    ComparisonOut,
    Percentiles,
    ReportOut,
    SecondOut,
    SummaryOut,
)
from control.results.compare import MEASURES, Row, compare
from control.results.queries import Second, Summary
from control.schemas import RunOut
from control.services.runs import current, progress
from wire import LiveRow

router = APIRouter(prefix="/api", tags=["results"], responses=RESPONSES)

Filter = Annotated[str | None, Query(max_length=1000, pattern=r"^[^\x00]*$")]


def _percentiles(p: dict[float, float]) -> Percentiles:
    return Percentiles(p50=p[0.5], p90=p[0.9], p95=p[0.95], p99=p[0.99], p99_9=p[0.999])


def second_out(s: Second) -> SecondOut:
    return SecondOut(
        second=s.second, samples=s.count, failures=s.failures,
        error_rate=s.failures / s.count if s.count else 0.0, elapsed_mean_ms=s.elapsed_mean_ms,
        elapsed=_percentiles(s.percentiles), threads=s.threads, bytes_recv=s.bytes_recv,
        bytes_sent=s.bytes_sent, failure_messages=s.failure_messages,
    )  # fmt: skip


def summary_out(s: Summary) -> SummaryOut:
    return SummaryOut(
        plan_id=s.plan_id, label=s.label, samples=s.count, failures=s.failures,
        error_rate=s.error_rate, rps=s.rps, elapsed_min_ms=s.elapsed_min_ms,
        elapsed_mean_ms=s.elapsed_mean_ms, elapsed_max_ms=s.elapsed_max_ms,
        elapsed=_percentiles(s.percentiles), latency=_percentiles(s.latency_percentiles),
        connect=_percentiles(s.connect_percentiles), codes=s.codes,
        failure_messages=s.failure_messages, first_second=s.first_second, last_second=s.last_second,
    )  # fmt: skip


_SECONDS = TypeAdapter(list[SecondOut])


@router.get("/runs/{run_id}/series", response_model=list[SecondOut])
async def series(
    run_id: RunId,
    request: Request,
    ctx: Ctx,
    who: Who,
    plan: Filter = None,
    label: Filter = None,
    since: Annotated[int | None, Query(ge=0, le=2**32 - 1, description="Unix second")] = None,
) -> Response:
    """Per-second rows of the run (or of one plan, or one label), oldest first."""
    ended = (await ctx.runs.of(who, run_id)).outcome is not None

    async def build() -> bytes:
        rows = await ctx.results.series(run_id, plan_id=plan, label=label, since_s=since)
        return _SECONDS.dump_json([second_out(s) for s in rows])

    # Keyed by the end too: the first answer after it is made afresh, never one from before.
    return await shared_json(ctx, request, ("series", run_id, plan, label, since, ended), build)


@router.get("/runs/{run_id}/report", response_model=ReportOut)
async def report(run_id: RunId, request: Request, ctx: Ctx, who: Who) -> Response:
    """The run with its verdicts, its totals and one summary per label."""
    run = await ctx.runs.of(who, run_id)

    async def build() -> bytes:
        return (await report_out(ctx, await progress(ctx.results, run))).model_dump_json().encode()

    return await shared_json(ctx, request, ("report", run_id, run.outcome is not None), build)


async def report_out(ctx: Context, run: RunOut) -> ReportOut:
    r = await ctx.results.report(run.id)
    return ReportOut(run=run, total=summary_out(r.total) if r.total else None,
                     labels=[summary_out(s) for s in r.labels],
                     late_samples=r.late_samples)  # fmt: skip


@router.get("/runs/{run_id}/compare/{other_id}", response_model=ComparisonOut)
async def comparison(
    run_id: RunId, other_id: RunId, request: Request, ctx: Ctx, who: Who
) -> Response:
    """Two runs side by side (``a`` = ``run_id``, ``b`` = ``other_id``), per label, with the
    change of each measure from a to b."""
    a = await ctx.runs.of(who, run_id)
    b = await ctx.runs.of(who, other_id)

    async def build() -> bytes:
        ab = [await progress(ctx.results, r) for r in (a, b)]
        return (await comparison_out(ctx, *ab)).model_dump_json().encode()

    ended = (a.outcome is not None, b.outcome is not None)
    return await shared_json(ctx, request, ("compare", run_id, other_id, ended), build)


async def comparison_out(ctx: Context, a: RunOut, b: RunOut) -> ComparisonOut:
    total, labels = compare(await ctx.results.report(a.id), await ctx.results.report(b.id))
    return ComparisonOut(a=a, b=b, total=_compared(total),
                         labels=[_compared(r) for r in labels])  # fmt: skip


def _compared(row: Row) -> ComparedOut:
    changes = {}
    for name in MEASURES:
        c = row.change(name)
        changes[name] = ChangeOut(a=c.a, b=c.b, delta=c.delta, percent=c.percent)
    return ComparedOut(plan_id=row.plan_id, label=row.label, in_a=row.a is not None,
                       in_b=row.b is not None, changes=changes)  # fmt: skip


@router.get(
    "/runs/{run_id}/live",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def live(
    run_id: RunId,
    ctx: Ctx,
    who: Who,
    since: Annotated[int, Query(ge=0, le=2**32 - 1, description="Unix second")] = 0,
    plan: Filter = None,
    label: Filter = None,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """Server-sent events while the run goes on: ``second`` (a final row as each second lands;
    its ``id`` is the second, so a reconnecting client resumes with ``Last-Event-ID``),
    ``provisional`` (what a second still open holds so far, within about a second of the
    engines; without an id: a newer one of the same second, and then its final row, replace
    it), ``status`` (the run, when its state or counts change) and a last ``end`` (the ended
    run). Rows are the whole run's, or with ``label`` (and ``plan``) that label's."""
    if last_event_id is not None:  # the second of the last event the client got
        if not re.fullmatch(r"[0-9]{1,10}", last_event_id) or int(last_event_id) >= 2**32 - 1:
            raise InvalidError("Last-Event-ID: the second of an event of this stream (a Unix "
                               "second, digits 0-9)")  # fmt: skip
        since = max(since, int(last_event_id) + 1)
    run = await current(ctx.runs, ctx.results, who, run_id)

    async def events() -> AsyncIterator[str]:
        nonlocal run
        next_s, shown, poll_at = since, None, time.monotonic()
        sent: dict[int, LiveRow] = {}
        while True:
            if time.monotonic() >= poll_at:
                ended = run.outcome is not None  # rows read after the end are complete
                for s in await ctx.results.series(run_id, plan_id=plan, label=label,
                                                  since_s=next_s):  # fmt: skip
                    yield _event("second", second_out(s).model_dump_json(), str(s.second))
                    next_s = s.second + 1
                if ended:
                    yield _event("end", run.model_dump_json())
                    return
                view = run.model_dump_json(include={"state", "samples", "failures", "engines"})
                if view != shown:
                    shown = view
                    yield _event("status", run.model_dump_json())
                poll_at = time.monotonic() + ctx.settings.live_poll_s
            sent = {s: r for s, r in sent.items() if s >= next_s}
            for row in ctx.live.rows(run_id, plan_id=plan, label=label, since_s=next_s):
                if sent.get(row.second_s) != row:
                    sent[row.second_s] = row
                    yield _event("provisional", live_out(row).model_dump_json())
            await ctx.live.changed(run_id, max(0.0, poll_at - time.monotonic()))
            if time.monotonic() >= poll_at:
                run = await current(ctx.runs, ctx.results, who, run_id)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})  # fmt: skip


def live_out(r: LiveRow) -> SecondOut:
    """A provisional row as the API shows a second (no failure messages: final rows have them)."""
    p = r.elapsed
    return SecondOut(
        second=r.second_s, samples=r.count, failures=r.failures,
        error_rate=r.failures / r.count if r.count else 0.0,
        elapsed_mean_ms=r.elapsed_sum_ms / r.count if r.count else 0.0,
        elapsed=Percentiles(p50=p[0], p90=p[1], p95=p[2], p99=p[3], p99_9=p[4]),
        threads=r.threads_max, bytes_recv=r.bytes_recv, bytes_sent=r.bytes_sent,
        failure_messages={},
    )  # fmt: skip


def _event(kind: str, data: str, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {data}\n\n"
