"""One error body for every failure: ``{"error": {"code", "message", "details"}}``.

``code`` is stable and machine-readable (``not_found``, ``forbidden``, ``conflict``,
``invalid``, ``unauthenticated``, ``too_large``, ``unsupported_file``, ``unavailable``,
``scheduler_failed``, ``internal``); ``message`` says what is wrong in words a person can act
on. A caller gets ``not_found`` for what exists but is not theirs, so ids of other groups' things
are not disclosed. The control plane's errors (:mod:`control.errors`) are mapped to a status and
a code here, in one handler; routes raise nothing of HTTP.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from control.errors import (
    ConflictError,
    ConstraintError,
    ControlError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    SchedulerError,
    TooLargeError,
    UnauthenticatedError,
    UnavailableError,
    UnsupportedError,
)

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail


#: The answer to each of the control plane's errors: status and code.
ANSWERS: dict[type[ControlError], tuple[int, str]] = {
    NotFoundError: (404, "not_found"),
    UnauthenticatedError: (401, "unauthenticated"),
    ForbiddenError: (403, "forbidden"),
    ConflictError: (409, "conflict"),
    InvalidError: (422, "invalid"),
    TooLargeError: (413, "too_large"),
    UnsupportedError: (415, "unsupported_file"),
    UnavailableError: (503, "unavailable"),
    SchedulerError: (502, "scheduler_failed"),
}


def answer(exc: ControlError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in ANSWERS:
            return ANSWERS[cls]
    return 500, "internal"


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
    @app.exception_handler(ControlError)
    async def control_error(_: Request, exc: ControlError) -> JSONResponse:
        status, code = answer(exc)
        message, details = exc.message, getattr(exc, "problems", None)
        if isinstance(exc, ConstraintError):
            log.info("refused by a database constraint: %s", exc.detail)
        elif isinstance(exc, SchedulerError):
            log.warning("scheduler failed: %s", exc)
            message = f"the engine scheduler failed: {exc}"
        return _body(status, code, message, details)

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

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        # The traceback is logged by the server; the caller gets the same body as ever.
        return _body(500, "internal", f"internal error ({type(exc).__name__}); see the API's log")
