"""What a run needs, checked from this replica: ``GET /api/health`` (``shibuya doctor`` asks it)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter
from pydantic import BaseModel

from control.api.deps import Ctx, Who
from control.api.errors import RESPONSES

router = APIRouter(prefix="/api", tags=["health"], responses=RESPONSES)


class Check(BaseModel):
    name: str
    ok: bool
    detail: str


@router.get("/health")
async def health(ctx: Ctx, who: Who) -> list[Check]:
    """The metadata database, Kafka, ClickHouse and the engine scheduler, each with whether it
    answers and what it is. For any authenticated caller; it shows no one's data."""
    del who
    checks: list[Check] = []

    async def check(name: str, probe: Awaitable[object], ok_detail: str) -> None:
        try:
            await asyncio.wait_for(probe, 10)
            checks.append(Check(name=name, ok=True, detail=ok_detail))
        except Exception as exc:  # every failure is an answer here
            checks.append(Check(name=name, ok=False, detail=f"{type(exc).__name__}: {exc}"[:300]))

    await check("database", asyncio.to_thread(ctx.db.ping), "answers")
    await check("kafka", ctx.producer.check(), f"{ctx.producer.bootstrap} answers")
    await check("clickhouse", ctx.results.store.query("SELECT 1"),
                "answers" + ("; this replica stores the stream's rows" if ctx.settings.sink.enabled
                             else ""))  # fmt: skip
    ok, detail = await asyncio.to_thread(ctx.scheduler.describe)
    checks.append(Check(name=f"scheduler ({ctx.scheduler.kind})", ok=ok, detail=detail))
    return checks
