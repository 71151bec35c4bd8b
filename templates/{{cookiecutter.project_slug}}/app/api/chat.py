"""POST /v1/chat/completions (JSON or SSE) and GET /v1/models."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app import service
from app.api.sse import EventStreamResponse, held_stream
from app.auth import current_tenant
from app.schemas import ChatRequest

router = APIRouter(tags=["chat"])


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(body: ChatRequest, request: Request,
                           tenant: str = Depends(current_tenant)) -> JSONResponse | EventStreamResponse:
    request_id = request.state.request_id
    api_key_id = getattr(request.state, "api_key_id", None)
    if not body.stream:
        result = await service.complete(body, tenant=tenant, request_id=request_id, api_key_id=api_key_id)
        return JSONResponse(result.to_openai(), headers={"X-Interaction-Id": result.interaction_id})
    # Errors before the first chunk raise here and become a proper HTTP status (502/503/429), unless the request
    # was held past the keep-alive interval (a waking model): then they end the already started stream.
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return await held_stream(
        lambda: service.open_stream(body, tenant=tenant, request_id=request_id, api_key_id=api_key_id),
        include_usage=include_usage, keepalive_s=request.app.state.settings.sse_keepalive_s)


@router.get("/v1/models")
async def list_models(_: str = Depends(current_tenant)) -> dict[str, Any]:
    gateway = service.runtime().gateway
    return {"object": "list", "data": [{"id": model, "object": "model", "created": 0, "owned_by": provider}
                                       for model, provider in gateway.models()]}
