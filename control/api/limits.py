"""One limit for every request body, enforced while the body is read.

A body declared larger than its limit is refused before a byte of it is read; one that turns
out larger (chunked, or lying about its length) is cut off where it passes the limit. Either way
the answer is ``413 too_large`` and the route never sees the body. Plan files have their own,
larger limit (``files.max_bytes``); everything else has ``limits.max_body_bytes``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Plan files: ``PUT /api/plans/{id}/files/{name}``.
FILE_UPLOAD = re.compile(r"^/api/plans/[^/]+/files/[^/]+$")


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int, max_file_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_file_bytes = max_file_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["method"] == "PUT" and FILE_UPLOAD.match(scope["path"])
        limit = self.max_file_bytes if upload else self.max_bytes
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        if not declared and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body at all (RFC 9112 §6.3): a GET's
            return
        if declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        seen, cut = 0, False
        started = False

        async def limited() -> Message:
            nonlocal seen, cut
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    cut = True  # the route sees a client gone; the answer is ours
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if cut:
                return
            started = True
            await send(message)

        try:
            await self.app(scope, limited, guarded)
        except ClientDisconnect:
            if not cut:
                raise
            # a route reading the body itself (a plan file's upload) saw the client go
        if cut and not started:
            await _too_large(send, limit)


async def _too_large(send: Send, limit: int) -> None:
    message = f"the body is larger than {limit:,} bytes"
    body: dict[str, Any] = {"error": {"code": "too_large", "message": message, "details": None}}
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": data})
