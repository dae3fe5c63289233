"""Runs: trigger, stop, status and history; the plan files engines fetch with a per-run token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from control.api.context import status_key
from control.api.deps import Ctx, Db, Id, Pages, Who, shared_json
from control.api.errors import RESPONSES
from control.schemas import Page, RunIn, RunOut, StopIn
from control.services import runs

router = APIRouter(prefix="/api", tags=["runs"], responses=RESPONSES)

RunId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^run-[0-9a-f]{12}$")]


@router.post("/collections/{collection_id}/runs", status_code=201)
async def trigger(
    collection_id: Id, ctx: Ctx, db: Db, who: Who, body: RunIn | None = None
) -> RunOut:
    """Start a run of the collection: deploy its engines if they are not (a scheduler other
    than ``external``), announce the run to the stream, start each plan's engines. The body's
    ``properties`` override the plans' and the collection's for this run; ``external``: only
    announce it, for engines of your own."""
    body = body or RunIn()
    try:
        return await runs.trigger(db, ctx.launcher, who, collection_id, body.properties,
                                  body.env, external=body.external)  # fmt: skip
    finally:
        ctx.answers.forget(status_key(collection_id))  # its engines may be new


@router.get("/runs/{run_id}", response_model=RunOut)
async def get_run(run_id: RunId, request: Request, ctx: Ctx, who: Who) -> Response:
    """The run with its progress as the stream reports it (engines, samples, verdicts)."""
    run = await ctx.runs.of(who, run_id)

    async def build() -> bytes:
        return (await runs.progress(ctx.results, run)).model_dump_json().encode()

    # Keyed by the end too: the first answer after it is made afresh, never one from before.
    return await shared_json(ctx, request, ("run", run_id, run.ended_at is not None), build)


@router.post("/runs/{run_id}/stop", status_code=202)
async def stop(run_id: RunId, body: StopIn, ctx: Ctx, db: Db, who: Who) -> RunOut:
    """Ask the stream to stop the run (it ends *aborted*); answered at once."""
    return await runs.stop(db, ctx.producer, ctx.settings.kafka.topics, who, run_id, body.reason)


@router.get("/collections/{collection_id}/runs")
def list_runs(collection_id: Id, db: Db, who: Who, page: Pages) -> Page[RunOut]:
    """The collection's runs, newest first."""
    return runs.listing(db, who, collection_id, page)


_engine_token = HTTPBearer(
    auto_error=False, description="an engine token of the run's collection (engines only)"
)


@router.get(
    "/engine-files/{run_id}/{plan_id}/{name}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
    tags=["engines"],
)
def engine_file(
    run_id: RunId,
    plan_id: Id,
    name: str,
    ctx: Ctx,
    db: Db,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_engine_token)],
) -> StreamingResponse:
    """A plan file for an engine of a run in progress, with an engine token of the run's
    collection — it opens nothing else, and nothing once the run has ended."""
    token = credentials.credentials if credentials else None
    sha256 = runs.engine_file(db, run_id, plan_id, name, token)
    return StreamingResponse(ctx.files.read(f"plans/{plan_id}/{name}"),
                             media_type="application/octet-stream",
                             headers={"X-Content-SHA256": sha256})  # fmt: skip
