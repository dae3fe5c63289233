"""Collections: plans with their engines, threads, ramp-up and duration; the ``multi-test`` YAML
config of Shibuya (import and export) and our pass/fail criteria."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from control.api.deps import Ctx, Db, Id, Pages, Who
from control.api.errors import RESPONSES
from control.schemas import CollectionIn, CollectionOut, CollectionPatch, Page
from control.services import collections

router = APIRouter(prefix="/api", tags=["collections"], responses=RESPONSES)


@router.post("/projects/{project_id}/collections", status_code=201)
def create_collection(project_id: Id, body: CollectionIn, db: Db, who: Who) -> CollectionOut:
    return collections.create(db, who, project_id, body)


@router.get("/projects/{project_id}/collections")
def list_collections(project_id: Id, db: Db, who: Who, page: Pages) -> Page[CollectionOut]:
    return collections.listing(db, who, project_id, page)


@router.get("/collections/{collection_id}")
def get_collection(collection_id: Id, db: Db, who: Who) -> CollectionOut:
    return collections.get(db, who, collection_id)


@router.patch("/collections/{collection_id}")
def change_collection(collection_id: Id, body: CollectionPatch, db: Db, who: Who) -> CollectionOut:
    return collections.change(db, who, collection_id, body)


@router.delete("/collections/{collection_id}", status_code=204)
def delete_collection(collection_id: Id, db: Db, who: Who) -> Response:
    collections.delete(db, who, collection_id)
    return Response(status_code=204)


#: The ``multi-test`` document, for the OpenAPI document (and the tools that read it).
_PLAN = {"type": "object", "required": ["testid", "concurrency", "engines"], "properties": {
    "name": {"type": "string"}, "testid": {"type": "integer"},
    "concurrency": {"type": "integer", "description": "threads per engine"},
    "engines": {"type": "integer"}, "rampup": {"type": "integer", "description": "seconds"},
    "duration": {"type": "integer", "description": "minutes"},
    "duration_s": {"type": "integer", "description": "seconds, instead of duration"},
    "csv_split": {"type": "boolean"}}}  # fmt: skip
MULTI_TEST = {"type": "object", "required": ["multi-test"], "properties": {"multi-test": {
    "type": "object", "required": ["name", "projectid", "collectionid", "tests"], "properties": {
        "name": {"type": "string"}, "projectid": {"type": "integer"},
        "collectionid": {"type": "integer"}, "csv_split": {"type": "boolean"},
        "thresholds": {"type": "array", "items": {"type": "string"}},
        "tests": {"type": "array", "items": _PLAN}}}}}  # fmt: skip


@router.put(
    "/collections/{collection_id}/config",
    openapi_extra={
        "requestBody": {"content": {"application/yaml": {"schema": MULTI_TEST}}, "required": True}
    },
)
async def put_config(
    collection_id: Id, request: Request, ctx: Ctx, db: Db, who: Who
) -> CollectionOut:
    """Replace the collection's plans (and name, CSV split, criteria) from a ``multi-test``
    YAML document (docs/api.md)."""
    body = await request.body()
    return collections.put_config(db, who, collection_id, body, ctx.settings.limits)


@router.get(
    "/collections/{collection_id}/config",
    response_class=Response,
    responses={200: {"content": {"application/yaml": {}}}},
)
def get_config(collection_id: Id, db: Db, who: Who) -> Response:
    text, filename = collections.get_config(db, who, collection_id)
    disposition = f'attachment; filename="{filename}"'
    return Response(text, media_type="application/yaml",
                    headers={"Content-Disposition": disposition})  # fmt: skip
