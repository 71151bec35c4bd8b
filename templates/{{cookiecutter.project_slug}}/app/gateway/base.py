"""What every provider speaks: a normalised call in, a stream of events out, and typed failures."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import httpx

log = logging.getLogger("app.gateway")


@dataclass(frozen=True)
class ToolCall:
    """A complete tool call the model made (OpenAI naming: `arguments` is a JSON text)."""

    id: str
    name: str
    arguments: str

    def to_openai(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True)
class Message:
    role: str  # system | user | assistant | tool
    content: str
    # Assistant turns that called tools, and the tool result that answers one of those calls.
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    # Content given as OpenAI parts (text, image_url), kept for providers that take images.
    parts: tuple[dict[str, Any], ...] = ()

    def images(self) -> list[str]:
        return [p["image_url"]["url"] for p in self.parts if p.get("type") == "image_url"]

    def to_openai(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role,
                               "content": list(self.parts) if self.parts else (self.content or None)}
        if out["content"] is None and not self.tool_calls:
            out["content"] = ""
        if self.tool_calls:
            out["tool_calls"] = [t.to_openai() for t in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out


@dataclass(frozen=True)
class ModelCall:
    """One chat call, provider-neutral. `params` holds sampling options in OpenAI naming."""

    model: str
    messages: tuple[Message, ...]
    params: dict[str, Any] = field(default_factory=dict)
    prompt_name: str | None = None
    prompt_version: str | None = None

    def for_model(self, model: str) -> ModelCall:
        return replace(self, model=model)

    def text(self) -> str:
        return "\n".join(f"{m.role}: {m.content}" + "".join(f" {t.name}({t.arguments})" for t in m.tool_calls)
                         for m in self.messages)

    def tools(self) -> list[dict[str, Any]]:
        """The request's function tools as OpenAI `{"type": "function", "function": {...}}` objects."""
        return list(self.params.get("tools") or [])

    def features(self) -> list[str]:
        """The request fields beyond plain text chat; a provider must support each one (or refuse with 400)."""
        used = [k for k in ("tools", "tool_choice", "parallel_tool_calls", "response_format")
                if self.params.get(k) is not None]
        if any(m.tool_calls or m.tool_call_id for m in self.messages) and "tools" not in used:
            used.append("tools")
        if any(m.images() for m in self.messages):
            used.append("image_url")
        return used


@dataclass
class Event:
    """One normalised piece of a model response; any field may be empty."""

    text: str = ""
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    response_model: str | None = None
    response_id: str | None = None
    # OpenAI `delta.tool_calls` items: the first for a call has index, id, type and function.name (with
    # arguments ""); later ones carry only index and an arguments fragment.
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


def tool_call_start(index: int, call_id: str, name: str) -> dict[str, Any]:
    return {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}


def tool_call_args(index: int, fragment: str) -> dict[str, Any]:
    return {"index": index, "function": {"arguments": fragment}}


class ToolCalls:
    """Folds streamed `delta.tool_calls` items into complete calls, the way the OpenAI SDK does."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, str]] = {}

    def add(self, deltas: list[dict[str, Any]]) -> None:
        for delta in deltas:
            call = self._calls.setdefault(int(delta.get("index", 0)), {"id": "", "name": "", "arguments": ""})
            call["id"] = delta.get("id") or call["id"]
            function = delta.get("function") or {}
            call["name"] = function.get("name") or call["name"]
            call["arguments"] += function.get("arguments") or ""

    def __bool__(self) -> bool:
        return bool(self._calls)

    def calls(self) -> list[ToolCall]:
        return [ToolCall(c["id"], c["name"], c["arguments"]) for _, c in sorted(self._calls.items())]


class Provider(Protocol):
    name: str

    def stream(self, call: ModelCall) -> AsyncGenerator[Event, None]:
        """Yield events as they arrive. Raise ProviderError (or httpx errors) before or during the stream."""
        ...

    async def aclose(self) -> None: ...


class GatewayError(Exception):
    """Base of every failure the API maps to an HTTP status."""

    status = 502
    code = "upstream_error"


class ProviderError(GatewayError):
    def __init__(self, provider: str, message: str, *, status: int | None = None, retryable: bool = True) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.upstream_status = status
        self.retryable = retryable


def upstream_failure(provider: str, what: str, detail: object, *, retryable: bool = True) -> ProviderError:
    """A failure the upstream described in its own words (an error event, a garbled chunk). The words go to
    the operator's log only: they can name the account or echo the request, and the tenant reads this
    error in the response and in the interaction record."""
    log.warning("%s: %s: %s", provider, what, str(detail)[:500])
    return ProviderError(provider, what, retryable=retryable)


class ClientRequestError(GatewayError):
    """The upstream rejected the request itself (400/422): another provider would too, so no fallback."""

    status = 400
    code = "invalid_request_error"


class UnsupportedFeatureError(ClientRequestError):
    """The chosen provider cannot do something the request asks for: refused, never silently dropped."""

    def __init__(self, provider: str, field: str, detail: str = "") -> None:
        super().__init__(f"{provider} does not support `{field}`" + (f": {detail}" if detail else
                         "; leave it out or pick a model served by a provider that supports it"))
        self.provider = provider
        self.field = field


class ModelColdError(ProviderError):
    """A self-hosted model server has no ready replica (connection refused or 503)."""


class ModelUnavailableError(GatewayError):
    """The latency budget ran out while the self-hosted model was waking up."""

    status = 503
    code = "model_waking_up"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class AllProvidersFailedError(GatewayError):
    def __init__(self, attempts: list[dict[str, Any]]) -> None:
        summary = "; ".join(f"{a['provider']}/{a['model']}: {a['error']}" for a in attempts) or "no provider available"
        super().__init__(f"every provider failed ({summary})")
        self.attempts = attempts
        if attempts and all(a.get("status") == 429 for a in attempts):
            self.status, self.code = 429, "rate_limit_exceeded"


class UnknownModelError(GatewayError):
    status = 400
    code = "model_not_found"


async def raise_for_status(provider: str, response: httpx.Response) -> None:
    """Turn an upstream error status into the right failure class, with the upstream's own message."""
    if response.status_code < 400:
        return
    body = (await response.aread()).decode("utf-8", "replace")[:500]
    try:
        detail = json.loads(body)
        message = detail.get("error", {}).get("message") if isinstance(detail.get("error"), dict) else None
        body = message or body
    except (ValueError, AttributeError):
        pass
    status = response.status_code
    if status in (400, 422):
        # The upstream's reason is about the client's own request (a bad tool schema, too many tokens): pass it on.
        raise ClientRequestError(f"{provider} rejected the request: {body}")
    # Any other body is about our account or the provider's servers (an OpenAI 401 quotes part of the API key):
    # the operator reads it in the log, the tenant gets only the status.
    log.warning("%s answered HTTP %s: %s", provider, status, body)
    # 401/403/404 mean this provider is misconfigured: move on, but retrying it is pointless.
    raise ProviderError(provider, f"HTTP {status}", status=status, retryable=status == 429 or status >= 500)


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str | None, str]]:
    """Parse a text/event-stream body into (event, data) pairs (multi-line data joined with newlines).

    Works on bytes and decodes whole lines only: httpx's aiter_lines adds two generator layers (text decoding,
    line splitting) per network read, a large share of the gateway's per-chunk cost (bench/README.md, "CPU per
    stream"). Lines may end in LF, CRLF or CR, as the SSE spec allows.
    """
    event: str | None = None
    data: list[str] = []
    pending = b""
    chunks = response.aiter_bytes()
    while True:
        chunk = await anext(chunks, None)
        if chunk is None:
            lines, pending = [pending], b""  # the body ended: a last unterminated line counts
        else:
            lines = (pending + chunk).splitlines(keepends=True)
            # A line without its LF waits for the next read (a trailing CR may be half of a CRLF).
            pending = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
        for raw in lines:
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            if not line:
                if data:
                    yield event, "\n".join(data)
                event, data = None, []
            elif line[0] != ":":
                name, _, value = line.partition(":")
                value = value[1:] if value[:1] == " " else value
                if name == "data":
                    data.append(value)
                elif name == "event":
                    event = value
        if chunk is None:
            break
    if data:
        yield event, "\n".join(data)


# The body normally ends in the same packet as the last event; a server that keeps it open is not waited for.
DRAIN_S = 1.0


async def drain(events: AsyncIterator[tuple[str | None, str]]) -> None:
    """Read a finished stream to its end, so httpx returns the connection to its pool instead of closing it.
    Leaving at the last event (`[DONE]`, `message_stop`) closed it: every request then paid a new TCP and TLS
    handshake, 2-3 round trips on the first token (bench/ scenario tls-rtt counts them)."""
    with contextlib.suppress(TimeoutError, httpx.HTTPError):
        async with asyncio.timeout(DRAIN_S):
            async for _ in events:
                pass


def estimate_tokens(text: str) -> int:
    """Rough count (about 4 characters per token) for usage the provider never reported."""
    return max(1, (len(text) + 3) // 4) if text else 0
