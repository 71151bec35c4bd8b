"""Real HTTP servers for tests: the app under uvicorn, and a stub upstream that speaks each provider's
streaming wire format, records every call and notices when the app hangs up on it."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.api.sse import EventStreamResponse


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def refused_port() -> Iterator[int]:
    """A port that refuses connections for as long as the block runs: a model server scaled to zero.

    Held bound but never listening, so no other test's server (another pytest-xdist worker's, say) can take it in
    the meantime; a port from free_port() once answered a cold-model test with that server's 404.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@contextmanager
def serve(asgi_app: Any, port: int | None = None) -> Iterator[str]:
    """Run an ASGI app on a real socket in a background thread; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(asgi_app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


@dataclass
class Behaviour:
    """How the stub answers one call."""

    status: int = 200
    chunks: list[str] = field(default_factory=lambda: ["Hello", " from", " the", " stub", "."])
    first_delay: float = 0.0
    chunk_delay: float = 0.0
    fail_after: int | None = None  # send this many chunks, then an error event
    token_delay: float = 0.0  # after the metadata (role chunk, message_start), before the first token
    truncate: bool = False  # end the body after the chunks: no finish reason, no [DONE] / message_stop
    input_tokens: int = 11
    output_tokens: int = 5
    model_suffix: str = "-2025-01-01"
    # Tool calls to make instead of text: (name, argument JSON in the fragments the provider streams).
    tool_calls: list[tuple[str, list[str]]] = field(default_factory=list)
    tool_fail_after_start: bool = False  # send the first call's start, then fail (mid-stream)


@dataclass
class Call:
    provider: str
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    started: float
    ended: float | None = None
    completed: bool = False
    peer: tuple[str, int] | None = None  # the app's end of the TCP connection: the same one means reused


class StubUpstream:
    """OpenAI (`/v1/chat/completions`; `/<provider>/v1/...` plays any other OpenAI-wire provider, such as the
    self-hosted `local`), Anthropic (`/v1/messages`) and Gemini (`/v1beta/models/{model}:streamGenerateContent`)
    on one server. Script the answers with `plan()`."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Behaviour]] = {}
        self.calls: list[Call] = []
        self.app = Starlette(routes=[
            Route("/v1/chat/completions", self.openai, methods=["POST"]),
            Route("/{provider}/v1/chat/completions", self.openai, methods=["POST"]),
            Route("/v1/messages", self.anthropic, methods=["POST"]),
            Route("/v1beta/models/{model_action:path}", self.gemini, methods=["POST"]),
        ])

    def plan(self, provider: str, *behaviours: Behaviour) -> None:
        self.scripts[provider] = list(behaviours)

    def calls_to(self, provider: str) -> list[Call]:
        return [c for c in self.calls if c.provider == provider]

    async def _begin(self, provider: str, request: Request) -> tuple[Call, Behaviour]:
        body = await request.json()
        peer = (request.client.host, request.client.port) if request.client else None
        call = Call(provider, request.url.path, body, dict(request.headers), time.monotonic(), peer=peer)
        self.calls.append(call)
        script = self.scripts.get(provider) or []
        behaviour = script.pop(0) if script else Behaviour()
        return call, behaviour

    def _error(self, call: Call, b: Behaviour) -> Response:
        call.ended = time.monotonic()
        return JSONResponse({"error": {"message": f"stub says {b.status}", "type": "server_error"}},
                            status_code=b.status)

    def _stream(self, call: Call, b: Behaviour, frames: Any) -> EventStreamResponse:
        async def body() -> AsyncIterator[bytes]:
            try:
                if b.first_delay:
                    await anyio.sleep(b.first_delay)
                async for frame in frames:
                    yield frame
                call.completed = True
            finally:
                call.ended = time.monotonic()

        return EventStreamResponse(body())

    async def openai(self, request: Request) -> Response:
        provider = request.path_params.get("provider", "openai")
        call, b = await self._begin(provider, request)
        if b.status != 200:
            return self._error(call, b)
        model = call.body["model"] + b.model_suffix

        async def frames() -> AsyncIterator[bytes]:
            base = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 1, "model": model}
            if b.tool_calls:
                # The shape OpenAI streams (recorded): role + call start with empty arguments, then fragments.
                for n, (name, fragments) in enumerate(b.tool_calls):
                    start = {"index": n, "id": f"call_stub{n}", "type": "function",
                             "function": {"name": name, "arguments": ""}}
                    delta: dict[str, Any] = {"tool_calls": [start]}
                    if n == 0:
                        delta = {"role": "assistant", "content": None, **delta, "refusal": None}
                    yield _data({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                                      "finish_reason": None}]})
                    if b.tool_fail_after_start:
                        yield _data({"error": {"message": "stub failed mid-stream", "type": "server_error"}})
                        return
                    for fragment in fragments:
                        yield _data({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                            {"index": n, "function": {"arguments": fragment}}]}, "logprobs": None,
                            "finish_reason": None}]})
                yield _data({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None,
                                                  "finish_reason": "tool_calls"}]})
                yield _data({**base, "choices": [], "usage": {"prompt_tokens": b.input_tokens,
                                                             "completion_tokens": b.output_tokens,
                                                             "total_tokens": b.input_tokens + b.output_tokens}})
                yield b"data: [DONE]\n\n"
                return
            yield _data({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
            if b.token_delay:
                await anyio.sleep(b.token_delay)
            for i, text in enumerate(b.chunks):
                if b.fail_after is not None and i == b.fail_after:
                    yield _data({"error": {"message": "stub failed mid-stream", "type": "server_error"}})
                    return
                if b.chunk_delay:
                    await anyio.sleep(b.chunk_delay)
                yield _data({**base, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})
            if b.truncate:
                return
            yield _data({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            if (call.body.get("stream_options") or {}).get("include_usage"):
                yield _data({**base, "choices": [], "usage": {"prompt_tokens": b.input_tokens,
                                                             "completion_tokens": b.output_tokens,
                                                             "total_tokens": b.input_tokens + b.output_tokens}})
            yield b"data: [DONE]\n\n"

        return self._stream(call, b, frames())

    async def anthropic(self, request: Request) -> Response:
        call, b = await self._begin("anthropic", request)
        if b.status != 200:
            return self._error(call, b)
        model = call.body["model"] + b.model_suffix

        async def frames() -> AsyncIterator[bytes]:
            yield _event("message_start", {"type": "message_start", "message": {
                "id": "msg_stub", "model": model, "usage": {"input_tokens": b.input_tokens, "output_tokens": 1}}})
            if b.tool_calls:
                # A short text block first, as Claude often does, so block and tool indexes differ.
                yield _event("content_block_start", {"type": "content_block_start", "index": 0,
                                                     "content_block": {"type": "text", "text": ""}})
                yield _event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                     "delta": {"type": "text_delta", "text": "Let me check."}})
                yield _event("content_block_stop", {"type": "content_block_stop", "index": 0})
                for n, (name, fragments) in enumerate(b.tool_calls, start=1):
                    yield _event("content_block_start", {"type": "content_block_start", "index": n, "content_block": {
                        "type": "tool_use", "id": f"toolu_stub{n}", "name": name, "input": {}}})
                    if b.tool_fail_after_start:
                        yield _event("error", {"type": "error", "error": {"type": "overloaded_error",
                                                                          "message": "stub overloaded"}})
                        return
                    for fragment in fragments:
                        yield _event("content_block_delta", {"type": "content_block_delta", "index": n, "delta": {
                            "type": "input_json_delta", "partial_json": fragment}})
                    yield _event("content_block_stop", {"type": "content_block_stop", "index": n})
                yield _event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                                               "usage": {"output_tokens": b.output_tokens}})
                yield _event("message_stop", {"type": "message_stop"})
                return
            yield _event("content_block_start", {"type": "content_block_start", "index": 0,
                                                 "content_block": {"type": "text", "text": ""}})
            if b.token_delay:
                await anyio.sleep(b.token_delay)
            for i, text in enumerate(b.chunks):
                if b.fail_after is not None and i == b.fail_after:
                    yield _event("error", {"type": "error", "error": {"type": "overloaded_error",
                                                                      "message": "stub overloaded"}})
                    return
                if b.chunk_delay:
                    await anyio.sleep(b.chunk_delay)
                yield _event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                     "delta": {"type": "text_delta", "text": text}})
            if b.truncate:
                return
            yield _event("content_block_stop", {"type": "content_block_stop", "index": 0})
            yield _event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                           "usage": {"output_tokens": b.output_tokens}})
            yield _event("message_stop", {"type": "message_stop"})

        return self._stream(call, b, frames())

    async def gemini(self, request: Request) -> Response:
        call, b = await self._begin("gemini", request)
        if b.status != 200:
            return self._error(call, b)
        model = request.path_params["model_action"].split(":")[0] + b.model_suffix

        async def frames() -> AsyncIterator[bytes]:
            if b.tool_calls:
                # Gemini sends each call whole (name + args object) in a functionCall part.
                parts = [{"functionCall": {"name": name, "args": json.loads("".join(fragments))}}
                         for name, fragments in b.tool_calls]
                if b.tool_fail_after_start:
                    yield _data({"candidates": [{"content": {"role": "model", "parts": parts[:1]}}],
                                 "modelVersion": model, "responseId": "gem_stub"})
                    yield _data({"error": {"code": 503, "message": "stub unavailable"}})
                    return
                yield _data({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}],
                             "modelVersion": model, "responseId": "gem_stub",
                             "usageMetadata": {"promptTokenCount": b.input_tokens,
                                               "candidatesTokenCount": b.output_tokens}})
                return
            if b.token_delay:
                # A first event with no text (what Gemini sends before a slow first token, e.g. while thinking).
                yield _data({"candidates": [{"content": {"role": "model", "parts": []}}], "modelVersion": model,
                             "responseId": "gem_stub"})
                await anyio.sleep(b.token_delay)
            for i, text in enumerate(b.chunks):
                if b.fail_after is not None and i == b.fail_after:
                    yield _data({"error": {"code": 503, "message": "stub unavailable"}})
                    return
                if b.chunk_delay:
                    await anyio.sleep(b.chunk_delay)
                last = i == len(b.chunks) - 1 and not b.truncate
                candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}}
                if last:
                    candidate["finishReason"] = "STOP"
                yield _data({"candidates": [candidate], "modelVersion": model, "responseId": "gem_stub",
                             "usageMetadata": {"promptTokenCount": b.input_tokens,
                                               "candidatesTokenCount": b.output_tokens if last else i + 1}})

        return self._stream(call, b, frames())


def _data(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()


def parse_sse(raw: bytes) -> list[str]:
    """Split an SSE body into its data payloads, asserting the framing OpenAI clients rely on."""
    text = raw.decode()
    assert text.endswith("\n\n"), "every SSE event must end with a blank line"
    events = text.split("\n\n")[:-1]
    payloads = []
    for event in events:
        assert event.startswith("data: "), f"unexpected SSE line: {event[:80]!r}"
        assert "\n" not in event, "one data line per event"
        payloads.append(event[len("data: "):])
    return payloads
