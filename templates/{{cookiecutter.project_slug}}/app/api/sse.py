"""Server-Sent Events in the OpenAI chunk format, with disconnect detection that does not wait for the
next chunk: the moment the client goes away, the stream (and with it the upstream request) is cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app.gateway import Event, GatewayError
from app.service import Turn

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# An SSE comment: clients ignore it, and every proxy on the way sees bytes, so none cuts a held stream as idle.
KEEPALIVE = b": keep-alive\n\n"


class EventStreamResponse(StreamingResponse):
    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[bytes], *, headers: dict[str, str] | None = None,
                 on_close: Callable[[], Awaitable[None]] | None = None) -> None:
        super().__init__(content, headers=headers)
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Starlette stops watching for disconnects under ASGI 2.4 servers and only notices one on the next
        # write; a model that is thinking writes nothing, so watch explicitly.
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                await self.listen_for_disconnect(receive)
                tg.cancel_scope.cancel()

            tg.start_soon(watch)
            try:
                await self.stream_response(send)
            except OSError:
                pass
            finally:
                tg.cancel_scope.cancel()
                # Runs even if the body was never iterated, so the turn is always recorded and closed.
                close = getattr(self.body_iterator, "aclose", None)
                with anyio.CancelScope(shield=True):
                    if close is not None:
                        await close()
                    if self.on_close is not None:
                        await self.on_close()


def frame(payload: dict[str, Any] | str) -> bytes:
    """One SSE event; a str payload is already JSON (or the literal [DONE])."""
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return f"data: {data}\n\n".encode()


class ChunkWriter:
    """Builds `chat.completion.chunk` payloads that share one id, creation time and model name."""

    def __init__(self, turn: Turn) -> None:
        self.turn = turn
        self.id = f"chatcmpl-{turn.id}"
        self.created = int(time.time())
        self._around: tuple[str, str] | None = None

    def content(self, text: str) -> str:
        """A content chunk, already serialised: only the text is encoded per chunk (the hot path)."""
        if self._around is None:
            marker = "\u0000text\u0000"
            template = json.dumps(self.chunk({"content": marker}), separators=(",", ":"), ensure_ascii=False)
            prefix, suffix = template.split(json.dumps(marker))
            self._around = (prefix, suffix)
        return self._around[0] + json.dumps(text, ensure_ascii=False) + self._around[1]

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.turn.summary.response_model or self.turn.trace.model or self.turn.call.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]}

    def usage(self) -> dict[str, Any]:
        input_tokens, output_tokens, _ = self.turn.usage()
        payload = self.chunk({})
        payload["choices"] = []
        payload["usage"] = {"prompt_tokens": input_tokens, "completion_tokens": output_tokens,
                            "total_tokens": input_tokens + output_tokens}
        return payload


def error_payload(exc: BaseException) -> dict[str, Any]:
    code = getattr(exc, "code", "internal_error")
    return {"error": {"message": str(exc) or type(exc).__name__, "type": "api_error", "code": code, "param": None}}


async def chunk_payloads(turn: Turn, events: AsyncIterator[Event],
                         include_usage: bool) -> AsyncIterator[dict[str, Any] | str]:
    """Chunk payloads; the finish chunk, usage and [DONE] come only after the record is committed."""
    writer = ChunkWriter(turn)
    # With tools the role chunk waits for the first output, so a tool-only answer starts like OpenAI's
    # (`content: null`) and SDK accumulation ends with content None, not "".
    announced = not turn.call.params.get("tools")
    if announced:
        yield writer.chunk({"role": "assistant", "content": ""})
    try:
        async for event in events:
            if event.text:
                if not announced:
                    announced = True
                    yield writer.chunk({"role": "assistant", "content": ""})
                yield writer.content(event.text)
            for item in event.tool_calls:  # one call delta per chunk, as OpenAI streams them
                delta: dict[str, Any] = {"tool_calls": [item]}
                if not announced:
                    announced = True
                    delta = {"role": "assistant", "content": None, **delta, "refusal": None}
                yield writer.chunk(delta)
    except GatewayError as exc:
        # Status 200 is already sent; the error travels as the last chunk (OpenAI SDKs raise on it).
        yield error_payload(exc)
        return
    except Exception as exc:  # the record could not be written: do not claim a complete answer
        yield error_payload(exc)
        return
    if not announced:
        yield writer.chunk({"role": "assistant", "content": ""})
    yield writer.chunk({}, turn.summary.finish_reason or "stop")
    if include_usage:
        yield writer.usage()
    yield "[DONE]"


async def sse_frames(turn: Turn, events: AsyncIterator[Event], include_usage: bool) -> AsyncIterator[bytes]:
    async for payload in chunk_payloads(turn, events, include_usage):
        yield frame(payload)


async def held_stream(open_stream: Callable[[], Awaitable[tuple[Turn, AsyncIterator[Event]]]], *,
                      include_usage: bool, keepalive_s: float) -> EventStreamResponse:
    """Open a stream; if the first chunk takes longer than `keepalive_s` (a cold self-hosted model is waking),
    start the response anyway and send keep-alive comments until it comes.

    Answers that come within `keepalive_s` keep their proper status (503 + Retry-After, 429, 502). A longer hold
    has committed to 200, so its failure arrives as the stream's error chunk (OpenAI SDKs raise on it), with the
    same code and message.
    """
    opening = asyncio.ensure_future(open_stream())
    try:
        await asyncio.wait({opening}, timeout=keepalive_s)
    except asyncio.CancelledError:
        opening.cancel()
        raise
    if opening.done():
        turn, events = opening.result()
        return EventStreamResponse(sse_frames(turn, events, include_usage),
                                   headers={**HEADERS, "X-Interaction-Id": turn.id}, on_close=turn.abandon)
    opened: list[Turn] = []

    async def body() -> AsyncIterator[bytes]:
        yield KEEPALIVE
        while not opening.done():
            await asyncio.wait({opening}, timeout=keepalive_s)
            if not opening.done():
                yield KEEPALIVE
        try:
            turn, events = opening.result()
        except Exception as exc:  # noqa: BLE001 - status 200 is sent: the error travels as the last chunk
            yield frame(error_payload(exc))
            return
        opened.append(turn)
        async for chunk in sse_frames(turn, events, include_usage):
            yield chunk

    async def close() -> None:
        if not opening.done():
            # The client left while the request was held: stop waiting (the gateway releases the pending count).
            opening.cancel()
            with contextlib.suppress(BaseException):
                await opening
            return
        if not opened and not opening.cancelled() and opening.exception() is None:
            opened.append(opening.result()[0])
        for turn in opened:
            if turn.abandon is not None:
                await turn.abandon()

    return EventStreamResponse(body(), headers=HEADERS, on_close=close)
