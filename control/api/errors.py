"""One error body for every failure: ``{"error": {"code", "message", "details"}}``.

``code`` is stable and machine-readable (``not_found``, ``forbidden``, ``conflict``,
``invalid``, ``unauthenticated``, ``too_large``, ``unsupported_file``); ``message`` says what
is wrong in words a person can act on. A caller gets ``not_found`` for what exists but is not
theirs, so ids of other groups' things are not disclosed.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException

from control.schedulers import SchedulerError

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def conflict(message: str) -> ApiError:
    return ApiError(409, "conflict", message)


def invalid(message: str, details: Any = None) -> ApiError:
    return ApiError(422, "invalid", message, details)


def _body(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, details=details))
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "too_large"}  # fmt: skip

#: What every route may answer besides its success, for the OpenAPI document.
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "no or an unknown token"},
    404: {"model": ErrorBody, "description": "not found, or not the caller's"},
    422: {"model": ErrorBody, "description": "invalid input"},
}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _body(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"at": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()
        ]
        first = details[0] if details else {"at": "", "problem": "invalid"}
        return _body(422, "invalid", f"{first['at']}: {first['problem']}", details)

    @app.exception_handler(HTTPException)
    async def http(_: Request, exc: HTTPException) -> JSONResponse:
        return _body(exc.status_code, _CODES.get(exc.status_code, "error"), str(exc.detail))

    @app.exception_handler(SchedulerError)
    async def scheduler(_: Request, exc: SchedulerError) -> JSONResponse:
        log.warning("scheduler failed: %s", exc)
        return _body(502, "scheduler_failed", f"the engine scheduler failed: {exc}")

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        # The traceback is logged by the server; the caller gets the same body as ever.
        return _body(500, "internal", f"internal error ({type(exc).__name__}); see the API's log")

    @app.exception_handler(IntegrityError)
    async def integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        log.info("refused by a database constraint: %s", exc.orig)
        return _body(409, "conflict", "refused by a constraint: it exists already or is in use")
