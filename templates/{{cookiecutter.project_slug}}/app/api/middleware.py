"""Request id, body size limit and OpenAI-shaped errors.

Pure ASGI middleware (not BaseHTTPMiddleware), so streamed responses pass through untouched.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.gateway import GatewayError
from app.metrics import REQUESTS
from app.prompts import PromptError

log = logging.getLogger("app.api")
# Client-chosen ids are echoed into logs and records: keep them short and printable.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": code, "param": param}}


class RequestContext:
    """Assigns the request id (client's `Idempotency-Key`, else `X-Request-Id`, else new), enforces the body
    size limit while the body streams in, and counts requests by route and status.

    A client-chosen id is an idempotency key (see `app.idempotency`), so a malformed one is refused with a
    400 rather than silently replaced (the retry would then be answered and billed twice). The
    `Idempotency-Key` wins: it is what the client set, while proxies and meshes add `X-Request-Id`."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        header = "idempotency-key" if "idempotency-key" in headers else "x-request-id"
        given = headers.get(header)
        if given is not None and not REQUEST_ID.fullmatch(given):
            response = JSONResponse(error_body(
                f"{header} header: {given[:40]!r} is not a valid id; use 1-128 characters from A-Z a-z 0-9 . _ : -",
                "invalid_request_error", "invalid_request_id", header), status_code=400)
            await response({"type": "http"}, _no_receive, send)
            REQUESTS.labels("unmatched", "400").inc()
            return
        request_id = given or uuid.uuid4().hex
        scope.setdefault("state", {}).update(request_id=request_id, request_id_given=given is not None)
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send, request_id)
            return
        received = 0
        status = 500

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # An HTTPException passes FastAPI's body parsing untouched and reaches the error handler.
                    raise HTTPException(413, self._too_large_message())
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        finally:
            route = scope.get("route")
            REQUESTS.labels(getattr(route, "path", "unmatched"), str(status)).inc()

    def _too_large_message(self) -> str:
        return f"request body is larger than {self.max_body_bytes} bytes; send less or raise MAX_BODY_BYTES"

    async def _too_large(self, send: Send, request_id: str) -> None:
        response = JSONResponse(error_body(self._too_large_message(), "invalid_request_error", "body_too_large"),
                                status_code=413, headers={"x-request-id": request_id})
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
                429: "rate_limit_error"}.get(exc.status_code,
                                             "api_error" if exc.status_code >= 500 else "invalid_request_error")
        return JSONResponse(error_body(str(exc.detail), kind), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Logged in full for the operator; the client gets one line and the id to quote, never internals.
        request_id = getattr(request.state, "request_id", "-")
        log.error("unhandled error for request %s", request_id, exc_info=exc)
        return JSONResponse(error_body(f"internal error; quote request id {request_id} to the operator",
                                       "api_error", "internal_error"), status_code=500)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return JSONResponse(error_body(f"{where}: {first.get('msg')}", "invalid_request_error", "invalid_value",
                                       where), status_code=400)

    @app.exception_handler(PromptError)
    async def bad_prompt(_: Request, exc: PromptError) -> JSONResponse:
        return JSONResponse(error_body(str(exc), "invalid_request_error", "prompt_not_found"), status_code=400)

    @app.exception_handler(GatewayError)
    async def gateway_error(_: Request, exc: GatewayError) -> JSONResponse:
        headers = {}
        retry_after = getattr(exc, "retry_after_s", None)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        elif exc.status == 429:
            headers["Retry-After"] = "1"
        kind = "invalid_request_error" if exc.status in (400, 409) else "api_error"
        return JSONResponse(error_body(str(exc), kind, exc.code), status_code=exc.status, headers=headers)
