"""Loopback stub upstream: an OpenAI-compatible chat completions endpoint that streams N tokens at a fixed pace.

A bare ASGI app (no framework) so the floor it sets is as low as uvicorn allows. Run it with
`uvicorn bench.stub_upstream:app --host 127.0.0.1 --port PORT`. Behaviour is global and set at run time through
`POST /control` (JSON: tokens, pace_ms, first_token_ms, hold), because gateways only forward standard fields:

- `hold: true` sends the first token and then parks every stream until `POST /control {"release": true}`; the
  benchmark uses it to measure a gateway's memory per open, idle stream.
- `POST /v1/traces` answers an empty OTLP/HTTP export response, so a tracing exporter has a local receiver.

Token i is the text `t{i} `, so a client can check that every chunk arrived, in order.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

STATE: dict[str, Any] = {"tokens": 32, "pace_ms": 5.0, "first_token_ms": 5.0, "hold": False, "requests": 0,
                         "open_streams": 0, "trace_exports": 0, "connections": 0}
# Client (address, port) pairs seen: a gateway that reuses its upstream connections opens few of them.
_peers: set[tuple[str, int]] = set()
_release = asyncio.Event()

SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
JSON_HEADERS = [(b"content-type", b"application/json")]


def expected_text(tokens: int) -> str:
    return "".join(f"t{i} " for i in range(tokens))


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client went away")
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _json(send: Send, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS})
    await send({"type": "http.response.body", "body": body})


def _chunk(cid: str, model: str, created: int, delta: dict[str, Any], finish: str | None = None,
           usage: dict[str, int] | None = None) -> bytes:
    payload: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        payload["choices"] = []
        payload["usage"] = usage
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _stream(request: dict[str, Any], receive: Receive, send: Send) -> None:
    tokens, pace = int(STATE["tokens"]), float(STATE["pace_ms"]) / 1000.0
    model = str(request.get("model", "stub"))
    cid, created = f"chatcmpl-stub-{STATE['requests']}", int(time.time())
    include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in request.get("messages", []))
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
    await asyncio.sleep(float(STATE["first_token_ms"]) / 1000.0)
    # Deadline-based pacing: a late wake-up does not push every later token back.
    start = time.perf_counter()
    for i in range(tokens):
        if i == 1 and STATE["hold"]:
            disconnect = asyncio.ensure_future(_wait_disconnect(receive))
            release = asyncio.ensure_future(_release.wait())
            await asyncio.wait({disconnect, release}, timeout=120, return_when=asyncio.FIRST_COMPLETED)
            for task in (disconnect, release):
                task.cancel()
            start = time.perf_counter() - i * pace
        if i:
            delay = start + i * pace - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        delta = {"role": "assistant", "content": f"t{i} "} if i == 0 else {"content": f"t{i} "}
        await send({"type": "http.response.body", "body": _chunk(cid, model, created, delta), "more_body": True})
    tail = _chunk(cid, model, created, {}, "stop")
    if include_usage:
        tail += _chunk(cid, model, created, {}, usage={"prompt_tokens": prompt_tokens, "completion_tokens": tokens,
                                                       "total_tokens": prompt_tokens + tokens})
    await send({"type": "http.response.body", "body": tail + b"data: [DONE]\n\n", "more_body": False})


async def _complete(request: dict[str, Any], send: Send) -> None:
    tokens = int(STATE["tokens"])
    await asyncio.sleep((float(STATE["first_token_ms"]) + tokens * float(STATE["pace_ms"])) / 1000.0)
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in request.get("messages", []))
    await _json(send, 200, {
        "id": f"chatcmpl-stub-{STATE['requests']}", "object": "chat.completion", "created": int(time.time()),
        "model": str(request.get("model", "stub")),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": expected_text(tokens)},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": tokens, "total_tokens": prompt_tokens + tokens},
    })


async def _control(body: bytes, send: Send) -> None:
    try:
        update = json.loads(body or b"{}")
    except json.JSONDecodeError:
        await _json(send, 400, {"error": "control body must be JSON"})
        return
    if update.pop("release", False):
        _release.set()
    if "hold" in update and update["hold"]:
        _release.clear()
    for key in ("tokens", "pace_ms", "first_token_ms", "hold"):
        if key in update:
            STATE[key] = update[key]
    if update.get("reset_counters"):
        STATE["requests"] = 0
        STATE["trace_exports"] = 0
    await _json(send, 200, STATE)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    try:
        body = await _body(receive) if method == "POST" else b""
    except ConnectionError:
        return
    if path in ("/v1/chat/completions", "/chat/completions") and method == "POST":
        try:
            request = json.loads(body)
        except json.JSONDecodeError:
            await _json(send, 400, {"error": {"message": "body must be JSON", "type": "invalid_request_error"}})
            return
        STATE["requests"] += 1
        peer = scope.get("client")
        if peer and tuple(peer) not in _peers:
            _peers.add(tuple(peer))
            STATE["connections"] = len(_peers)
        if request.get("stream"):
            STATE["open_streams"] += 1
            try:
                await _stream(request, receive, send)
            finally:
                STATE["open_streams"] -= 1
        else:
            await _complete(request, send)
    elif path in ("/v1/models", "/models"):
        await _json(send, 200, {"object": "list", "data": [{"id": "stub", "object": "model", "owned_by": "bench"}]})
    elif path == "/control" and method == "POST":
        await _control(body, send)
    elif path == "/control":
        await _json(send, 200, STATE)
    elif path == "/v1/traces" and method == "POST":
        STATE["trace_exports"] += 1
        # An empty ExportTraceServiceResponse is a zero-length protobuf message.
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/x-protobuf")]})
        await send({"type": "http.response.body", "body": b""})
    elif path in ("/healthz", "/health"):
        await _json(send, 200, {"status": "ok"})
    else:
        await _json(send, 404, {"error": f"no route {method} {path}"})
