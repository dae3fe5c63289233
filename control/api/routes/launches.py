"""Engines of a collection: deploy, purge, status (the scheduler's view and the engines'
heartbeats), logs, launch history, engine tokens; and usage in engine-hours and
virtual-user-hours."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse

from control.api.context import status_key
from control.api.deps import Ctx, Db, Id, Pages, Who, shared_json
from control.api.errors import RESPONSES
from control.schemas import (
    CollectionStatusOut,
    EngineTokenOut,
    LaunchOut,
    Page,
    PurgeIn,
    PurgeOut,
    RunningOut,
    UsageReportOut,
)
from control.services import engine_tokens, engines, launches, usage

router = APIRouter(prefix="/api", tags=["engines"], responses=RESPONSES)


@router.post("/collections/{collection_id}/deploy", status_code=201,
             responses={200: {"model": LaunchOut, "description": "already deployed: only "
                              "missing engines were started"}})  # fmt: skip
def deploy(collection_id: Id, response: Response, ctx: Ctx, db: Db, who: Who) -> LaunchOut:
    """Deploy the collection's engines (as many per plan as its config says). Idempotent: a
    second deploy starts only engines that are missing and answers 200."""
    launch, created = launches.deploy_collection(db, ctx.scheduler, ctx.settings.limits, who,
                                                 collection_id)  # fmt: skip
    ctx.answers.forget(status_key(collection_id))
    response.status_code = 201 if created else 200
    return launch


@router.post("/collections/{collection_id}/purge")
async def purge(collection_id: Id, body: PurgeIn, ctx: Ctx, db: Db, who: Who) -> PurgeOut:
    """Remove the collection's engines and end its launch (refused while a run is in
    progress: stop it first). Idempotent."""
    out = await launches.purge_collection(db, ctx.scheduler, ctx.producer,
                                          ctx.settings.kafka.topics, who, collection_id,
                                          body.reason)  # fmt: skip
    ctx.answers.forget(status_key(collection_id))
    return out


@router.post("/collections/{collection_id}/engine-tokens", status_code=201)
def issue_engine_token(collection_id: Id, db: Db, who: Who) -> EngineTokenOut:
    """An engine token of the collection, for engines someone else runs (the external
    scheduler): their SHIBUYA_SIDECAR_ENGINE_TOKEN. Shown once; valid until revoked."""
    return engine_tokens.issue_to_user(db, who, collection_id)


@router.delete("/collections/{collection_id}/engine-tokens")
def revoke_engine_tokens(collection_id: Id, db: Db, who: Who) -> dict[str, int]:
    """Revoke every engine token of the collection issued to users (a deploy's go with its
    purge); how many."""
    return {"revoked": engine_tokens.revoke_users(db, who, collection_id)}


@router.get("/collections/{collection_id}/launches")
def list_launches(collection_id: Id, db: Db, who: Who, page: Pages) -> Page[LaunchOut]:
    """The collection's launches, newest first."""
    return launches.listing(db, who, collection_id, page)


@router.get("/collections/{collection_id}/status", response_model=CollectionStatusOut)
async def status(collection_id: Id, request: Request, ctx: Ctx, who: Who) -> Response:
    """Per plan: engines asked for, deployed (the scheduler), ready and running (heartbeats
    within ``scheduler.status_window_s``); and every engine known to either."""
    collection = await ctx.collections.of(who, collection_id)

    async def build() -> bytes:
        with ctx.db.sessions() as s:
            view = await engines.status(s, ctx.scheduler, ctx.results, collection,
                                        ctx.settings.scheduler.status_window_s,
                                        ctx.live.purge_at_ms(str(collection.id)))  # fmt: skip
        return view.model_dump_json().encode()

    return await shared_json(ctx, request, status_key(collection.id), build)


@router.get("/collections/{collection_id}/engines/{plan_id}/{index}/logs",
            response_class=PlainTextResponse)  # fmt: skip
def engine_logs(
    collection_id: Id,
    plan_id: Id,
    index: Annotated[int, Path(ge=0, le=9999)],
    ctx: Ctx,
    db: Db,
    who: Who,
    tail_bytes: Annotated[int, Query(ge=1, le=10 * 2**20)] = 65536,
) -> PlainTextResponse:
    """The end of an engine's log (the sidecar's and JMeter's output)."""
    text = engines.logs(db, ctx.scheduler, who, collection_id, plan_id, index, tail_bytes)
    return PlainTextResponse(text)


@router.get("/usage", tags=["usage"])
def usage_report(
    db: Db,
    who: Who,
    since: Annotated[datetime | None, Query(description="default: 30 days before until")] = None,
    until: Annotated[datetime | None, Query(description="default: now")] = None,
) -> UsageReportOut:
    """Engine-hours and virtual-user-hours of launches (the part within the period), and runs
    started in it, per project the caller can see."""
    return usage.report(db, who, since, until)


@router.get("/running", tags=["usage"])
def running(db: Db, who: Who) -> list[RunningOut]:
    """Collections with engines deployed or a run in progress: the caller's groups' (every
    group's for an admin)."""
    return usage.running(db, who)
