"""What every provider speaks: a normalised call in, a stream of events out, and typed failures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import httpx


@dataclass(frozen=True)
class Message:
    role: str  # system | user | assistant
    content: str


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
        return "\n".join(f"{m.role}: {m.content}" for m in self.messages)


@dataclass
class Event:
    """One normalised piece of a model response; any field may be empty."""

    text: str = ""
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    response_model: str | None = None
    response_id: str | None = None


class Provider(Protocol):
    name: str

    def stream(self, call: ModelCall) -> AsyncIterator[Event]:
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


class ClientRequestError(GatewayError):
    """The upstream rejected the request itself (400/422): another provider would too, so no fallback."""

    status = 400
    code = "invalid_request_error"


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
        raise ClientRequestError(f"{provider} rejected the request: {body}")
    # 401/403/404 mean this provider is misconfigured: move on, but retrying it is pointless.
    raise ProviderError(provider, f"HTTP {status}: {body}", status=status, retryable=status == 429 or status >= 500)


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str | None, str]]:
    """Parse a text/event-stream body into (event, data) pairs (multi-line data joined with newlines)."""
    event: str | None = None
    data: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    if data:
        yield event, "\n".join(data)


def estimate_tokens(text: str) -> int:
    """Rough count (about 4 characters per token) for usage the provider never reported."""
    return max(1, (len(text) + 3) // 4) if text else 0
