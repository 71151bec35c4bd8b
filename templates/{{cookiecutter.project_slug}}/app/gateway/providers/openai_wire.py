"""The OpenAI chat-completions wire format, spoken by OpenAI itself and by vLLM, Ollama and friends."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from app.gateway.base import Event, ModelCall, drain, raise_for_status, sse_events, upstream_failure

PASSTHROUGH = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "presence_penalty",
               "frequency_penalty", "user", "response_format", "tools", "tool_choice", "parallel_tool_calls")


def request_body(call: ModelCall) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": call.model,
        "messages": [m.to_openai() for m in call.messages],
        "stream": True,
        # Without this the upstream never reports streamed usage, and billing would see zeros.
        "stream_options": {"include_usage": True},
    }
    body.update({k: v for k, v in call.params.items() if k in PASSTHROUGH and v is not None})
    return body


def parse_chunk(provider: str, data: str) -> Event:
    try:
        chunk = json.loads(data)
    except ValueError as exc:
        raise upstream_failure(provider, "malformed stream chunk", data) from exc
    if "error" in chunk and chunk["error"]:
        err = chunk["error"]
        raise upstream_failure(provider, "error event in the stream", err)
    event = Event(response_model=chunk.get("model"), response_id=chunk.get("id"))
    choices = chunk.get("choices") or []
    if choices:
        choice = choices[0]
        delta = choice.get("delta") or {}
        event.text = delta.get("content") or ""
        # Passed on as they came: OpenAI-compatible servers already speak the shape our clients expect.
        event.tool_calls = [t for t in delta.get("tool_calls") or [] if isinstance(t, dict)]
        event.finish_reason = choice.get("finish_reason")
    usage = chunk.get("usage")
    if usage:
        event.input_tokens = usage.get("prompt_tokens")
        event.output_tokens = usage.get("completion_tokens")
    return event


async def stream_openai_wire(provider: str, client: httpx.AsyncClient, url: str, headers: dict[str, str],
                             call: ModelCall) -> AsyncGenerator[Event, None]:
    async with client.stream("POST", url, json=request_body(call), headers=headers) as response:
        await raise_for_status(provider, response)
        events = sse_events(response)
        async for _event, data in events:
            if data.strip() == "[DONE]":
                await drain(events)
                return
            yield parse_chunk(provider, data)
