"""POST /v1/chat/completions (JSON or SSE) and GET /v1/models."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import anyio
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from app import service
from app.api.sse import HEADERS, EventStreamResponse, frame, held_stream
from app.auth import current_tenant
from app.schemas import ChatRequest, ChatResult

router = APIRouter(tags=["chat"])
T = TypeVar("T")
# nginx's status for "the client closed the connection before the answer".
CLIENT_CLOSED_REQUEST = 499


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(body: ChatRequest, request: Request,
                           tenant: str = Depends(current_tenant)) -> Response | EventStreamResponse:
    request_id = request.state.request_id
    api_key_id = getattr(request.state, "api_key_id", None)
    if (problem := unencodable(body)) is not None:
        raise HTTPException(400, problem)
    # Only a client-chosen id can come back; a fresh server id needs no claim (and no extra write).
    given = getattr(request.state, "request_id_given", False)
    replayed = await service.claim(body, tenant=tenant, request_id=request_id) if given else None
    if replayed is not None:
        headers = {"X-Interaction-Id": replayed.interaction_id, "Idempotent-Replayed": "true"}
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return EventStreamResponse(_replay_frames(replayed, include_usage), headers={**HEADERS, **headers})
        return JSONResponse(replayed.to_openai(), headers=headers)
    if not body.stream:
        # Already claimed above when the client chose the id.
        result = await until_disconnected(request, lambda: service.complete(
            body, tenant=tenant, request_id=request_id, api_key_id=api_key_id))
        if result is None:
            # Nobody is listening; the status only reaches the request counter and the access log.
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        return JSONResponse(result.to_openai(), headers={"X-Interaction-Id": result.interaction_id})
    # Errors before the first chunk raise here and become a proper HTTP status (502/503/429), unless the request
    # was held past the keep-alive interval (a waking model): then they end the already started stream.
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return await held_stream(
        lambda: service.open_stream(body, tenant=tenant, request_id=request_id, api_key_id=api_key_id),
        include_usage=include_usage, keepalive_s=request.app.state.settings.sse_keepalive_s)


async def until_disconnected(request: Request, work: Callable[[], Awaitable[T]]) -> T | None:
    """`work()`, cancelled if the client hangs up first (then None). The server does not cancel a handler whose
    client left, so without this a non-streaming answer would run, and be billed, to the end for nobody; the
    cancellation reaches `service.complete`, which closes the upstream call and records the usage so far,
    as a stream does."""
    outcome: list[T] = []
    failure: list[Exception] = []
    async with anyio.create_task_group() as tg:
        async def run() -> None:
            try:
                outcome.append(await work())
            except Exception as exc:  # re-raised below as itself, not wrapped in the task group's ExceptionGroup
                failure.append(exc)
            finally:
                tg.cancel_scope.cancel()

        async def watch() -> None:
            # The body is already read, so the next message is the disconnect (or the end of the response).
            while (await request.receive())["type"] != "http.disconnect":
                pass
            tg.cancel_scope.cancel()

        tg.start_soon(run)
        tg.start_soon(watch)
    if failure:
        raise failure[0]
    return outcome[0] if outcome else None


def unencodable(body: ChatRequest) -> str | None:
    """JSON may carry an unpaired surrogate (`\\ud800`) that no UTF-8 consumer (provider, database) accepts."""
    try:
        body.model_dump_json()
    except ValueError as exc:
        return f"request body is not valid Unicode ({str(exc).splitlines()[0][:120]}); send UTF-8 text without " \
               "unpaired surrogates"
    return None


async def _replay_frames(result: ChatResult, include_usage: bool) -> AsyncIterator[bytes]:
    """The stored answer as one content chunk, in the same chunk format a live stream uses."""
    whole = result.to_openai()
    base = {"id": whole["id"], "object": "chat.completion.chunk", "created": whole["created"], "model": whole["model"]}
    for delta, finish in (({"role": "assistant", "content": ""}, None), ({"content": result.text}, None),
                          ({}, whole["choices"][0]["finish_reason"])):
        yield frame({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]})
    if include_usage:
        yield frame({**base, "choices": [], "usage": whole["usage"]})
    yield frame("[DONE]")


@router.get("/v1/models")
async def list_models(_: str = Depends(current_tenant)) -> dict[str, Any]:
    gateway = service.runtime().gateway
    return {"object": "list", "data": [{"id": model, "object": "model", "created": 0, "owned_by": provider}
                                       for model, provider in gateway.models()]}
