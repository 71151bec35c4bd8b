"""The chat path shared by the HTTP API and background workers: prompt + retrieval -> gateway ->
usage metering + provenance record, written in one transaction before the answer is declared complete.

Public interface:
- `await complete(request, tenant=..., request_id=...) -> ChatResult`: the whole non-streaming path.
- `await open_stream(request, tenant=..., request_id=...) -> (Turn, events)`: the streaming path; the first
  event is already received, so a failure before any output raises here (and becomes an HTTP error).
  Exhausting `events` commits the record; closing it early (client gone) still records usage so far.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import anyio

from app import {% if cookiecutter.vector_store != 'none' %}memory, {% endif %}{% if cookiecutter.usage_billing != 'none' %}metering, {% endif %}prompts
from app.db.base import run_db, session_scope, utcnow
from app.db.models import Interaction
from app.gateway import CallTrace, Event, Gateway, GatewayError, Message, ModelCall, Summary
from app.gateway.base import estimate_tokens
from app.metrics import TOKENS, TTFT
from app.provenance.redact import keep
from app.schemas import ChatRequest, ChatResult
from app.settings import Settings, get_settings

log = logging.getLogger("app.service")


def _current_trace_id() -> str | None:
    """The OpenTelemetry trace this request runs in, so an answer links to its spans (None without tracing)."""
{%- if cookiecutter.observability != 'none' %}
    from opentelemetry import trace as otel_trace

    context = otel_trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
{%- else %}
    return None
{%- endif %}


@dataclass
class Runtime:
    settings: Settings
    gateway: Gateway


_runtime: Runtime | None = None


def configure(settings: Settings, gateway: Gateway | None = None) -> Runtime:
    """Build the process-wide gateway. The API calls this at startup; workers may too."""
    global _runtime
    gateway = gateway or Gateway(settings)
    if gateway.fake_active:
        log.warning(
            "FAKE PROVIDER ACTIVE: no provider credentials are configured (%s), so every request is answered by "
            "the offline 'fake' model. Set %s to use real models.", ", ".join(settings.providers),
            " / ".join("LOCAL_BASE_URL" if p == "local" else f"{p.upper()}_API_KEY" for p in settings.providers
                       if p != "fake"),
        )
    else:
        log.info("providers: %s (fallback order: %s)", ", ".join(gateway.providers), ", ".join(settings.fallback))
    _runtime = Runtime(settings, gateway)
    return _runtime


def runtime() -> Runtime:
    return _runtime or configure(get_settings())


async def shutdown() -> None:
    global _runtime
    if _runtime is not None:
        await _runtime.gateway.aclose()
        _runtime = None


class Turn:
    """One interaction, from request to its provenance record (and usage row)."""

    def __init__(self, rt: Runtime, request: ChatRequest, *, tenant: str, request_id: str, api_key_id: str | None,
                 stream: bool) -> None:
        self.rt = rt
        self.request = request
        self.tenant = tenant
        self.request_id = request_id
        self.api_key_id = api_key_id
        self.stream = stream
        self.id = uuid.uuid4().hex
        self.created_at: datetime = utcnow()
        self.t0 = time.monotonic()
        self.deadline = self.t0 + rt.settings.latency_budget_ms / 1000
        self.ttft_s: float | None = None
        self.summary = Summary()
        self.trace = CallTrace()
        self.retrieved_document_ids: list[str] = []
        self.retrieved_chunks: list[dict[str, object]] = []
        self.trace_id = _current_trace_id()
        self.finished = False
        self.completed = False
        self.usage_recorded: bool | None = None
        self.call: ModelCall
        self.abandon: Callable[[], Awaitable[None]] | None = None

    async def prepare(self) -> None:
        settings = self.rt.settings
        meta = self.request.metadata or {}
        prompt = prompts.load(settings.prompts_dir, meta.get("prompt_name", settings.prompt_name),
                              meta.get("prompt_version", settings.prompt_version))
        system = prompt.text
{%- if cookiecutter.vector_store != 'none' %}
        query = next((m.text() for m in reversed(self.request.messages) if m.role == "user"), "")
        chunks = await memory.retrieve(tenant=self.tenant, query=query, k=settings.retrieval_k)
        if chunks:
            self.retrieved_document_ids = list(dict.fromkeys(str(c.document_id) for c in chunks))
            self.retrieved_chunks = [{"document_id": str(c.document_id), "chunk_index": c.chunk_index,
                                      "score": c.score, "text": c.text} for c in chunks]
            context = "\n\n".join(f"[{c.document_id}#{c.chunk_index}]\n{c.text}" for c in chunks)
            system += ("\n\nAnswer from the context below when it is relevant; it comes from the user's documents."
                       f"\n\n<context>\n{context}\n</context>")
{%- endif %}
        messages = [Message("system", system)]
        for m in self.request.messages:
            role = "system" if m.role == "developer" else ("user" if m.role == "tool" else m.role)
            messages.append(Message(role, m.text()))
        self.prompt = prompt
        self.call = ModelCall(model=self.request.model or self.rt.gateway.default_model(), messages=tuple(messages),
                              params=self.request.params(), prompt_name=prompt.name, prompt_version=prompt.version)

    def observe(self, event: Event) -> None:
        self.summary.add(event)
        if self.ttft_s is None and event.text:
            self.ttft_s = time.monotonic() - self.t0
            TTFT.labels(self.trace.model or self.call.model).observe(self.ttft_s)

    def usage(self) -> tuple[int, int, bool]:
        """Tokens to bill. A stream that did not finish (client left, provider failed) has no final usage
        report, so what the client received is counted here and the larger figure is billed."""
        s = self.summary
        input_tokens = s.input_tokens if s.input_tokens is not None else estimate_tokens(self.call.text())
        output_tokens = s.output_tokens if s.output_tokens is not None else estimate_tokens("".join(s.text))
        estimated = s.input_tokens is None or s.output_tokens is None
        if not self.completed:
            counted = estimate_tokens("".join(s.text))
            estimated = estimated or counted > output_tokens
            output_tokens = max(output_tokens, counted)
        return input_tokens, output_tokens, estimated

    def _write(self, status: str, error: str | None) -> None:
        settings = self.rt.settings
        mode = settings.trace_content
        served = self.trace.provider is not None
        input_tokens, output_tokens, estimated = self.usage() if served else (None, None, False)
        latency_ms = (time.monotonic() - self.t0) * 1000
        with session_scope() as session:
            session.add(Interaction(
                id=self.id, request_id=self.request_id, tenant_id=self.tenant, api_key_id=self.api_key_id,
                created_at=self.created_at, finished_at=utcnow(),
                ttft_ms=round(self.ttft_s * 1000, 2) if self.ttft_s is not None else None,
                latency_ms=round(latency_ms, 2), stream=self.stream,
                prompt_name=self.prompt.name, prompt_version=self.prompt.version, prompt_sha256=self.prompt.sha256,
                requested_model=self.call.model, provider=self.trace.provider, model=self.trace.model,
                response_model=self.summary.response_model, response_id=self.summary.response_id,
                retrieved_document_ids=self.retrieved_document_ids, attempts=self.trace.attempts,
                input_tokens=input_tokens, output_tokens=output_tokens, usage_estimated=estimated,
                finish_reason=self.summary.finish_reason, status=status, error=error, trace_content=mode,
                input_text=keep(self.call.text(), mode), output_text=keep("".join(self.summary.text), mode),
                trace_id=self.trace_id,
                retrieved_chunks=[{**c, "text": keep(str(c["text"]), mode)} for c in self.retrieved_chunks],
            ))
{%- if cookiecutter.usage_billing != 'none' %}
            if served and (input_tokens or output_tokens):
                assert self.trace.provider is not None and self.trace.model is not None
                self.usage_recorded = metering.record(session, metering.Usage(
                    request_id=self.request_id, interaction_id=self.id, tenant=self.tenant,
                    api_key_id=self.api_key_id, provider=self.trace.provider, model=self.trace.model,
                    input_tokens=input_tokens or 0, output_tokens=output_tokens or 0, estimated=estimated,
                    status=status, created_at=self.created_at,
                ), settings.prices{% if cookiecutter.usage_billing == 'stripe' %}, meter_event_name=settings.stripe_meter_event_name{% endif %})
{%- endif %}
        if served:
            model = self.trace.model or self.call.model
            TOKENS.labels(model, "input").inc(input_tokens or 0)
            TOKENS.labels(model, "output").inc(output_tokens or 0)

    async def finish(self, status: str, error: str | None = None) -> None:
        """Commit the record once. Shielded: a disconnect must not lose the usage consumed so far."""
        if self.finished:
            return
        self.finished = True
        self.completed = status == "ok"
        with anyio.CancelScope(shield=True):
            await run_db(self._write, status, error)

    def result(self) -> ChatResult:
        input_tokens, output_tokens, estimated = self.usage()
        assert self.trace.provider is not None and self.trace.model is not None
        return ChatResult(
            interaction_id=self.id, request_id=self.request_id, text="".join(self.summary.text),
            finish_reason=self.summary.finish_reason, provider=self.trace.provider, model=self.trace.model,
            response_model=self.summary.response_model, response_id=self.summary.response_id,
            input_tokens=input_tokens, output_tokens=output_tokens, usage_estimated=estimated,
            retrieved_document_ids=self.retrieved_document_ids,
        )


async def complete(request: ChatRequest, *, tenant: str, request_id: str, api_key_id: str | None = None) -> ChatResult:
    """Answer one chat request end to end (gateway, metering, provenance) and return the result.

    Raises `GatewayError` subclasses (each carries an HTTP `status`) when no provider could answer; the
    failed interaction is recorded before the error propagates.
    """
    rt = runtime()
    turn = Turn(rt, request, tenant=tenant, request_id=request_id, api_key_id=api_key_id, stream=False)
    await turn.prepare()
    try:
        async for event in rt.gateway.stream(turn.call, deadline=turn.deadline, trace=turn.trace):
            turn.observe(event)
    except GatewayError as exc:
        await turn.finish("error", str(exc))
        raise
    except BaseException:
        await turn.finish("cancelled", "request cancelled before the answer completed")
        raise
    await turn.finish("ok")
    return turn.result()


async def open_stream(request: ChatRequest, *, tenant: str, request_id: str,
                      api_key_id: str | None = None) -> tuple[Turn, AsyncIterator[Event]]:
    rt = runtime()
    turn = Turn(rt, request, tenant=tenant, request_id=request_id, api_key_id=api_key_id, stream=True)
    await turn.prepare()
    events = rt.gateway.stream(turn.call, deadline=turn.deadline, trace=turn.trace)
    try:
        first = await anext(events)
    except GatewayError as exc:
        await events.aclose()
        await turn.finish("error", str(exc))
        raise
    except BaseException:
        with anyio.CancelScope(shield=True):
            await events.aclose()
        await turn.finish("cancelled", "client disconnected before the first chunk")
        raise
    turn.observe(first)

    async def abandon() -> None:
        # For a stream dropped before its first item was pulled (the client left before the response
        # started): `rest()` never ran, so close the upstream call and record the turn here.
        if not turn.finished:
            with anyio.CancelScope(shield=True):
                await events.aclose()
            await turn.finish("cancelled", "client disconnected before the response started")

    turn.abandon = abandon

    async def rest() -> AsyncIterator[Event]:
        status, error = "ok", None
        try:
            yield first
            async for event in events:
                turn.observe(event)
                yield event
        except GatewayError as exc:
            status, error = "error", str(exc)
            raise
        except BaseException:
            status, error = "cancelled", "client disconnected mid-stream"
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await events.aclose()
            await turn.finish(status, error)

    return turn, rest()
