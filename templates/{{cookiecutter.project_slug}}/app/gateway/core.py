"""The in-process gateway: model -> provider routing, ordered fallback, bounded retries with jittered
backoff (never once a chunk has been forwarded), per-provider first-chunk timeouts, circuit breakers,
and holding requests while a self-hosted model wakes from zero."""

from __future__ import annotations

import fnmatch
import logging
import random
import time
from collections.abc import AsyncGenerator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from app.gateway.base import (
    AllProvidersFailedError,
    ClientRequestError,
    Event,
    GatewayError,
    ModelCall,
    ModelColdError,
    ModelUnavailableError,
    Provider,
    ProviderError,
    ToolCalls,
    UnknownModelError,
)
from app.gateway.breaker import CircuitBreaker
from app.gateway.providers import build
from app.gateway.wake import PENDING
from app.metrics import FALLBACKS, PROVIDER_ERRORS
from app.settings import PROVIDERS, Settings
{%- if cookiecutter.observability != 'none' %}
from app.telemetry import model_span
{%- endif %}

log = logging.getLogger("app.gateway")
{%- if cookiecutter.observability == 'none' %}


class _NoSpan:
    def record_response(self, **_: Any) -> None:
        return None


def model_span(**_: Any) -> nullcontext[_NoSpan]:
    # observability=none: no tracing code at all, same call sites.
    return nullcontext(_NoSpan())
{%- endif %}


class MidStreamError(GatewayError):
    """The serving provider failed after chunks were forwarded; retrying would duplicate text."""


@dataclass
class CallTrace:
    """What happened on the way to an answer; the provenance record stores it."""

    provider: str | None = None
    model: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def failed(self, provider: str, model: str, error: BaseException, started: float) -> None:
        status = getattr(error, "upstream_status", None)
        message = str(error) or type(error).__name__
        self.attempts.append({"provider": provider, "model": model, "error": message[:300], "status": status,
                              "ms": round((time.monotonic() - started) * 1000, 1)})


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError | httpx.TimeoutException):
        return "timeout"
    if isinstance(error, ModelColdError):
        return "cold"
    status = getattr(error, "upstream_status", None)
    return f"http_{status}" if status else type(error).__name__


def _substantive(event: Event) -> bool:
    """Whether an event carries output the client would see (text, a tool call, the finish)."""
    return bool(event.text or event.finish_reason or getattr(event, "tool_calls", None))


def _provider_fault(error: BaseException) -> bool:
    """Whether a failure says the provider is unhealthy. A 404 names a model the client chose; counting it
    would let one tenant open the circuit for every tenant."""
    return getattr(error, "upstream_status", None) not in (400, 404, 409, 413, 422)


def backoff_s(attempt: int) -> float:
    # Full jitter: spreads retries of many clients so they don't hit a recovering provider in lockstep.
    return random.uniform(0, min(2.0, 0.1 * 2**attempt))


class Gateway:
    def __init__(self, settings: Settings, providers: dict[str, Provider] | None = None) -> None:
        self.settings = settings
        configured = settings.configured_providers()
        self.fake_active = not configured and providers is None
        if providers is None:
            providers = {name: build(name, settings) for name in (configured or ["fake"])}
        self.providers = providers
        self.breakers = {name: CircuitBreaker(name, settings.breaker_failures, settings.breaker_reset_s)
                         for name in providers}

    def provider_for(self, model: str) -> str | None:
        if model in self.settings.model_map:
            return self.settings.model_map[model]
        for pattern, provider in self.settings.model_map.items():
            if fnmatch.fnmatchcase(model, pattern):
                return provider
        return None

    def route(self, model: str) -> list[tuple[str, str]]:
        """(provider, model) pairs to try in order: the model's own provider, then the fallback order."""
        if self.fake_active:
            # Whatever was asked for, the record and the response say honestly that fake-1 answered.
            return [("fake", self.settings.provider_models.get("fake", "fake-1"))]
        primary = self.provider_for(model)
        if primary is None:
            raise UnknownModelError(f"unknown model '{model}': no MODEL_MAP pattern matches it "
                                    f"(patterns: {', '.join(self.settings.model_map) or 'none'})")
        if primary not in self.providers:
            hint = "fake runs only when no provider has credentials" if primary == "fake" else \
                f"set {PROVIDERS[primary]['secret']}"
            raise UnknownModelError(f"model '{model}' is served by '{primary}', which is not configured ({hint})")
        chain = [(primary, model)]
        for name in self.settings.fallback:
            if name != primary and name in self.providers and name in self.settings.provider_models:
                chain.append((name, self.settings.provider_models[name]))
        return chain

    def route_for(self, call: ModelCall, trace: CallTrace) -> list[tuple[str, str]]:
        """`route` narrowed to providers that support every feature the call uses (tools, response_format,
        images): the model's own provider refuses with a 400 naming itself and the field; a fallback that
        cannot serve the call is skipped (and noted in the trace), never sent a degraded request."""
        chain = []
        for index, (name, model) in enumerate(self.route(call.model)):
            check = getattr(self.providers[name], "check", None)
            try:
                if check is not None:
                    check(call)
            except ClientRequestError as exc:
                if index == 0:
                    raise
                trace.attempts.append({"provider": name, "model": model, "error": f"skipped: {exc}",
                                       "status": None, "ms": 0.0})
                continue
            chain.append((name, model))
        return chain

    def default_model(self) -> str:
        if self.settings.default_model:
            return self.settings.default_model
        first = "fake" if self.fake_active else next(iter(self.providers))
        return self.settings.provider_models.get(first, "fake-1")

    def models(self) -> list[tuple[str, str]]:
        if self.fake_active:
            return [("fake-1", "fake")]
        named = {self.settings.provider_models[p]: p for p in self.providers if p in self.settings.provider_models}
        exact = {m: p for m, p in self.settings.model_map.items()
                 if p in self.providers and not any(c in m for c in "*?[")}
        return sorted({**named, **exact}.items())

    def metric_label(self, model: str) -> str:
        """`model` as a Prometheus label: configured names only. Clients choose model names, and every
        distinct label value is a new time series, so anything else is counted as "other"."""
        known = {m for m, _ in self.models()} | set(self.settings.provider_models.values())
        return model if model in known else "other"

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()

    async def stream(self, call: ModelCall, *, deadline: float, trace: CallTrace) -> AsyncGenerator[Event, None]:
        """Events of the first provider that produces a chunk. `deadline` (time.monotonic) bounds the wait
        for a cold self-hosted model; `trace` collects the provider used and every failed attempt."""
        cold: ModelUnavailableError | None = None
        for index, (name, model) in enumerate(self.route_for(call, trace)):
            provider, breaker = self.providers[name], self.breakers[name]
            if not breaker.allow():
                trace.attempts.append({"provider": name, "model": model, "error": "circuit open", "status": None,
                                       "ms": 0.0})
                continue
            retries = 0
            with PENDING.track(model) if name == "local" else nullcontext():
                while True:
                    committed = settled = False
                    started = time.monotonic()
                    events = provider.stream(call.for_model(model))
                    try:
                        with model_span(operation="chat", provider=name, request_model=model,
                                        prompt_name=call.prompt_name, prompt_version=call.prompt_version) as span:
                            # Metadata (Anthropic's message_start, a role-only chunk) commits nothing: the
                            # timeout runs to the first token, and a failure before it can still fall back.
                            held: list[Event] = []
                            with anyio.fail_after(self.settings.timeout_for(name)):
                                while not held or not _substantive(held[-1]):
                                    held.append(await anext(events))
                            committed = settled = True
                            breaker.success()
                            if name == "local":
                                PENDING.served(model)
                            trace.provider, trace.model = name, model
                            if index:
                                FALLBACKS.labels(name).inc()
                            out = Summary()
                            for event in held:
                                out.add(event)
                                yield event
                            async for event in events:
                                out.add(event)
                                yield event
                            if out.finish_reason is None:
                                # Cut off without a finish reason ([DONE], message_stop): not a complete answer.
                                raise ProviderError(name, "the stream ended without a finish reason (truncated)")
                            span.record_response(response_model=out.response_model, response_id=out.response_id,
                                                 finish_reasons=[out.finish_reason] if out.finish_reason else [],
                                                 input_tokens=out.input_tokens, output_tokens=out.output_tokens,
                                                 input_text=call.text(), output_text="".join(out.text))
                        return
                    except ClientRequestError:
                        raise
                    except ModelColdError as exc:
                        remaining = deadline - time.monotonic()
                        if remaining > 0:
                            # Hold the request while the server wakes; this is not a retry and not a breaker failure.
                            await anyio.sleep(min(0.5, remaining))
                            continue
                        PROVIDER_ERRORS.labels(name, "cold").inc()
                        trace.failed(name, model, exc, started)
                        hold = getattr(self.settings, "local_wake_hold_s", 0.0)
                        PENDING.refused(model, hold)
                        cold = ModelUnavailableError(
                            f"model '{model}' is starting up and did not answer within the "
                            f"{self.settings.latency_budget_ms} ms latency budget; retry shortly",
                            retry_after_s=getattr(self.settings, "local_retry_after_s", 30))
                        break
                    except (ProviderError, httpx.HTTPError, TimeoutError, StopAsyncIteration) as exc:
                        PROVIDER_ERRORS.labels(name, _reason(exc)).inc()
                        if _provider_fault(exc):
                            breaker.failure()
                            settled = True
                        if committed:
                            raise MidStreamError(f"{name} failed mid-stream: {exc or type(exc).__name__}") from exc
                        if isinstance(exc, StopAsyncIteration):
                            exc = ProviderError(name, "empty response")
                        trace.failed(name, model, exc, started)
                        log.warning("provider %s failed for %s: %s", name, model, trace.attempts[-1]["error"])
                        if getattr(exc, "retryable", True) and retries < self.settings.retries and breaker.allow():
                            retries += 1
                            await anyio.sleep(backoff_s(retries))
                            continue
                        break
                    finally:
                        if not settled:
                            # 4xx caused by the request, cancellation, a cold hold: no verdict on the provider.
                            breaker.release()
                        await events.aclose()
        if cold is not None:
            raise cold
        raise AllProvidersFailedError(trace.attempts)


class Summary:
    """Folds events into the usage and identity a record needs (last reported value wins)."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.finish_reason: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.response_model: str | None = None
        self.response_id: str | None = None
        self.chunks = 0
        self.tool_calls = ToolCalls()

    def add(self, event: Event) -> None:
        if event.text:
            self.text.append(event.text)
            self.chunks += 1
        if event.finish_reason:
            self.finish_reason = event.finish_reason
        if event.input_tokens is not None:
            self.input_tokens = event.input_tokens
        if event.output_tokens is not None:
            self.output_tokens = event.output_tokens
        if event.tool_calls:
            self.tool_calls.add(event.tool_calls)
        self.response_model = event.response_model or self.response_model
        self.response_id = event.response_id or self.response_id
