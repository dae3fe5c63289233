"""A collection's secrets: set, listed by name, removed; and what its engines fetch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from control.api.deps import Ctx, Db, Id, Who
from control.api.errors import RESPONSES
from control.schemas import PROPERTY_NAME, SecretIn, SecretOut
from control.services import secrets

router = APIRouter(prefix="/api", tags=["secrets"], responses=RESPONSES)

Name = Annotated[str, Path(pattern=PROPERTY_NAME, description="the JMeter property it becomes")]
RunId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^run-[0-9a-f]{12}$")]
_engine_token = HTTPBearer(
    auto_error=False, description="an engine token of the run's collection (engines only)"
)


@router.put("/collections/{collection_id}/secrets/{name}")
def put_secret(
    collection_id: Id, name: Name, body: SecretIn, ctx: Ctx, db: Db, who: Who
) -> SecretOut:
    """Set a secret (a password, an API key): stored sealed, never returned; the collection's
    engines get it as the JMeter property ``name`` of every run (over other properties)."""
    return secrets.put(db, ctx.vault, who, collection_id, name, body.value)


@router.get("/collections/{collection_id}/secrets")
def list_secrets(collection_id: Id, db: Db, who: Who) -> list[SecretOut]:
    """The collection's secrets: names and when each was set, never a value."""
    return secrets.listing(db, who, collection_id)


@router.delete("/collections/{collection_id}/secrets/{name}", status_code=204)
def delete_secret(collection_id: Id, name: Name, db: Db, who: Who) -> Response:
    secrets.delete(db, who, collection_id, name)
    return Response(status_code=204)


@router.get("/engine-secrets/{run_id}", tags=["engines"])
def engine_secrets(
    run_id: RunId,
    ctx: Ctx,
    db: Db,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_engine_token)],
) -> dict[str, str]:
    """The secrets of a run in progress, for an engine token of the run's collection — nothing
    once the run has ended."""
    token = credentials.credentials if credentials else None
    return secrets.for_engine(db, ctx.vault, run_id, token)
