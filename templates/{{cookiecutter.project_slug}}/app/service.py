"""The chat path shared by the HTTP API and background workers: prompt + retrieval -> gateway ->
usage metering + provenance record, written in one transaction before the answer is declared complete.

Public interface:
- `await complete(request, tenant=..., request_id=...) -> ChatResult`: the whole non-streaming path; with
  `idempotent=True` the request id is claimed first (see `app.idempotency`): a reused id replays or is refused.
- `await claim(request, tenant=..., request_id=...) -> ChatResult | None`: claim a client-chosen id before
  `open_stream`; a result means "replay this, do not call the model".
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
from prometheus_client import Counter

from app import idempotency, {% if cookiecutter.vector_store != 'none' %}memory, {% endif %}{% if cookiecutter.usage_billing != 'none' %}metering, {% endif %}prompts
from app.db.base import run_db, session_scope, utcnow
from app.db.models import Interaction
from app.gateway import CallTrace, Event, Gateway, GatewayError, Message, MidStreamError, ModelCall, Summary
from app.gateway.base import estimate_tokens
from app.metrics import REGISTRY, TOKENS, TTFT
from app.provenance.redact import keep
from app.schemas import ChatRequest, ChatResult
from app.settings import PROVIDERS, Settings, get_settings

log = logging.getLogger("app.service")
# Alert on any increase: each one is an answer withheld (or cut short) because it could not be billed.
RECORD_FAILURES = Counter("aistarter_record_write_failures", "Interaction/usage writes that failed after retries.",
                          ["status"], registry=REGISTRY)
# Attempts at writing a record before the answer is withheld: rides out a database failover of ~1.5 s.
WRITE_ATTEMPTS = 3


class RecordNotWrittenError(GatewayError):
    """The record (and usage row) could not be written, so the answer is withheld: never served unbilled."""

    status = 503
    code = "record_not_written"


def storable(text: str | None) -> str | None:
    """Text PostgreSQL can store: no NUL characters, no unpaired surrogates (both fail the whole insert)."""
    if text is None:
        return None
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


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
            " / ".join(PROVIDERS[p]["secret"] for p in settings.providers if p != "fake"),
        )
    else:
        log.info("providers: %s (fallback order: %s)", ", ".join(gateway.providers), ", ".join(settings.fallback))
    _runtime = Runtime(settings, gateway)
    return _runtime


def runtime() -> Runtime:
    return _runtime or configure(get_settings())


# Turns whose record is not written yet. Shutdown drains them: a turn whose task the server tore down
# before it wrote its record (uvicorn cancels whatever outlives --timeout-graceful-shutdown, and that
# cancellation can land before the write starts) is written here, as interrupted, with its usage so far.
OPEN: set[Turn] = set()
# How long shutdown waits for torn-down turns to write their own records before writing them itself.
# Together with WRITE_ATTEMPTS' backoff this must fit between the Dockerfile's --timeout-graceful-shutdown
# and the pod's terminationGracePeriodSeconds (tests/faults/test_faults.py checks the two).
DRAIN_S = 2.0


async def drain(timeout_s: float = DRAIN_S) -> int:
    """Wait for open turns to write their records, then write the orphans as interrupted; returns how
    many were written here. Writes already running in a worker thread are waited for: the process must
    not exit under them (their coroutine may be gone, the thread is not)."""
    with anyio.move_on_after(timeout_s):
        while any(not turn.written for turn in OPEN):  # noqa: ASYNC110 - turns end in other tasks' finally
            await anyio.sleep(0.05)
    orphans = [turn for turn in OPEN if not turn.written and not turn.writing]
    for turn in orphans:
        turn.finished = False
        await turn.finish("interrupted", "the server shut down before the answer completed")
    while any(turn.writing for turn in OPEN):  # noqa: ASYNC110
        await anyio.sleep(0.05)
    if orphans:
        log.warning("shutdown: wrote %d interrupted record(s) whose requests were cut off", len(orphans))
    OPEN.clear()
    return len(orphans)


async def shutdown() -> None:
    global _runtime
    await drain()
    if _runtime is not None:
        await _runtime.gateway.aclose()
        _runtime = None


{%- if cookiecutter.vector_store != 'none' %}


class RetrievalError(GatewayError):
    """The user's documents could not be searched; answering without them would silently change the answer."""

    status = 503
    code = "retrieval_unavailable"


async def _retrieve(tenant: str, query: str, k: int) -> list[memory.RetrievedChunk]:
    # One bound for the whole search (embedding retries included), so a hanging embeddings endpoint
    # cannot hold a chat request past the time the operator allowed one embeddings call.
    limit_s = memory.get_memory_settings().embeddings_timeout_s
    try:
        with anyio.fail_after(limit_s):
            return await memory.retrieve(tenant=tenant, query=query, k=k)
    except TimeoutError:
        log.warning("retrieval for tenant %s timed out after %.0f s", tenant, limit_s)
        raise RetrievalError(f"document search did not answer within {limit_s:.0f} s; retry shortly") from None
    except Exception as exc:  # embeddings endpoint down, vector store unreachable
        log.warning("retrieval for tenant %s failed: %s: %s", tenant, type(exc).__name__, exc)
        raise RetrievalError("document search is unavailable; retry shortly") from None
{%- endif %}


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
        # A write is running in a worker thread (which cancellation does not stop) / has committed.
        self.writing = self.written = False
        self._result: ChatResult | None = None

    async def prepare(self) -> None:
        settings = self.rt.settings
        meta = self.request.metadata or {}
        prompt = prompts.load(settings.prompts_dir, meta.get("prompt_name", settings.prompt_name),
                              meta.get("prompt_version", settings.prompt_version))
        system = prompt.text
{%- if cookiecutter.vector_store != 'none' %}
        query = next((m.text() for m in reversed(self.request.messages) if m.role == "user"), "")
        chunks = await _retrieve(self.tenant, query, settings.retrieval_k)
        if chunks:
            self.retrieved_document_ids = list(dict.fromkeys(str(c.document_id) for c in chunks))
            self.retrieved_chunks = [{"document_id": str(c.document_id), "chunk_index": c.chunk_index,
                                      "score": c.score, "text": c.text} for c in chunks]
            context = "\n\n".join(f"[{c.document_id}#{c.chunk_index}]\n{c.text}" for c in chunks)
            system += ("\n\nAnswer from the context below when it is relevant; it comes from the user's documents."
                       f"\n\n<context>\n{context}\n</context>")
{%- endif %}
        messages = [Message("system", system), *self.request.gateway_messages()]
        self.prompt = prompt
        self.call = ModelCall(model=self.request.model or self.rt.gateway.default_model(), messages=tuple(messages),
                              params=self.request.params(), prompt_name=prompt.name, prompt_version=prompt.version)

    def observe(self, event: Event) -> None:
        self.summary.add(event)
        if self.ttft_s is None and event.text:
            self.ttft_s = time.monotonic() - self.t0
            TTFT.labels(self.rt.gateway.metric_label(self.trace.model or self.call.model)).observe(self.ttft_s)

    def restart(self, failure: BaseException) -> None:
        """Discard a partial answer nobody saw, before asking again."""
        assert self.trace.provider is not None and self.trace.model is not None
        self.trace.failed(self.trace.provider, self.trace.model, failure, self.t0)
        self.trace.provider = self.trace.model = None
        self.summary, self.ttft_s = Summary(), None

    def tenant_text(self) -> str:
        """What the tenant sent, for the record they can read back: the operator's system prompt and the
        retrieved context are identified by prompt sha256 and document ids, never returned as text."""
        return "\n".join(f"{m.role}: {m.content}" for m in self.call.messages[1:])

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
        self.writing = True
        try:
            self._write_record(status, error)
            self.written = True
        finally:
            self.writing = False

    def _write_record(self, status: str, error: str | None) -> None:
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
                response_model=storable(self.summary.response_model), response_id=storable(self.summary.response_id),
                retrieved_document_ids=self.retrieved_document_ids, attempts=self.trace.attempts,
                input_tokens=input_tokens, output_tokens=output_tokens, usage_estimated=estimated,
                finish_reason=storable(self.summary.finish_reason), status=status, error=storable(error),
                trace_content=mode, input_text=storable(keep(self.tenant_text(), mode)),
                output_text=storable(keep("".join(self.summary.text), mode)),
                trace_id=self.trace_id,
                retrieved_chunks=[{**c, "text": storable(keep(str(c["text"]), mode))}
                                  for c in self.retrieved_chunks],
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
            idempotency.settle(session, self.tenant, self.request_id, served=served,
                               result=self.result() if status == "ok" else None)
        if served:
            model = self.rt.gateway.metric_label(self.trace.model or self.call.model)
            TOKENS.labels(model, "input").inc(input_tokens or 0)
            TOKENS.labels(model, "output").inc(output_tokens or 0)

    async def finish(self, status: str, error: str | None = None) -> None:
        """Commit the record once. Shielded: a disconnect must not lose the usage consumed so far."""
        if self.finished:
            return
        self.finished = True
        self.completed = status == "ok"
        with anyio.CancelScope(shield=True):
            for attempt in range(1, WRITE_ATTEMPTS + 1):
                try:
                    await run_db(self._write, status, error)
                    OPEN.discard(self)
                    return
                except Exception as exc:  # the database is down, or refused the row
                    log.error("interaction %s (request %s, tenant %s): record and usage not written, attempt %d/%d: "
                              "%s", self.id, self.request_id, self.tenant, attempt, WRITE_ATTEMPTS,
                              type(exc).__name__, exc_info=attempt == WRITE_ATTEMPTS)
                    if attempt < WRITE_ATTEMPTS:
                        await anyio.sleep(0.25 * 2**attempt)
            RECORD_FAILURES.labels(status).inc()
            OPEN.discard(self)
        if status != "ok":
            return  # the client gets no complete answer anyway; raising here would mask a cancellation
        # The message names no table, statement or parameter: the tenant sees only that it was not recorded.
        raise RecordNotWrittenError("the answer could not be recorded for billing, so it is withheld; "
                                    "retry shortly with the same Idempotency-Key")

    def result(self) -> ChatResult:
        # Built once: the stored copy (replayed for a reused request id) must equal the one sent.
        if self._result is not None:
            return self._result
        input_tokens, output_tokens, estimated = self.usage()
        assert self.trace.provider is not None and self.trace.model is not None
        self._result = ChatResult(
            interaction_id=self.id, request_id=self.request_id, text="".join(self.summary.text),
            finish_reason=self.summary.finish_reason, provider=self.trace.provider, model=self.trace.model,
            response_model=self.summary.response_model, response_id=self.summary.response_id,
            input_tokens=input_tokens, output_tokens=output_tokens, usage_estimated=estimated,
            retrieved_document_ids=self.retrieved_document_ids, tool_calls=self.summary.tool_calls.calls(),
        )
        return self._result


async def claim(request: ChatRequest, *, tenant: str, request_id: str) -> ChatResult | None:
    """Bind a client-chosen request id to this body: None to go ahead, or the stored answer to replay.
    Raises `IdempotencyConflictError` (409) for a reused id with another body or still in flight."""
    return await run_db(idempotency.claim, tenant, request_id, idempotency.body_hash(request))


async def _prepare(turn: Turn) -> None:
    try:
        await turn.prepare()
    except BaseException:
        # Nothing was asked of a model: give the id back so the client can retry it.
        with anyio.CancelScope(shield=True):
            await run_db(idempotency.release, turn.tenant, turn.request_id)
        raise
    OPEN.add(turn)


async def complete(request: ChatRequest, *, tenant: str, request_id: str, api_key_id: str | None = None,
                   idempotent: bool = False) -> ChatResult:
    """Answer one chat request end to end (gateway, metering, provenance) and return the result.

    Raises `GatewayError` subclasses (each carries an HTTP `status`) when no provider could answer; the
    failed interaction is recorded before the error propagates. `idempotent=True` claims the request id
    first (a client-chosen id: replay or 409). Job workers leave it off: the job's lease already runs one
    attempt at a time, and a claim left by a killed worker would block the retry; the usage row's unique
    key still bills a retried item once.
    """
    if idempotent and (replayed := await claim(request, tenant=tenant, request_id=request_id)) is not None:
        return replayed
    rt = runtime()
    turn = Turn(rt, request, tenant=tenant, request_id=request_id, api_key_id=api_key_id, stream=False)
    await _prepare(turn)
    restarts = rt.settings.retries
    try:
        while True:
            try:
                async for event in rt.gateway.stream(turn.call, deadline=turn.deadline, trace=turn.trace):
                    turn.observe(event)
                break
            except MidStreamError as exc:
                # The client has received nothing yet, so a provider failing mid-answer is retried (with
                # fallback) from the start, unlike a stream.
                if restarts <= 0:
                    raise
                restarts -= 1
                turn.restart(exc)
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
    """Start a streamed answer. A client-chosen request id must be claimed with `claim()` first."""
    rt = runtime()
    turn = Turn(rt, request, tenant=tenant, request_id=request_id, api_key_id=api_key_id, stream=True)
    await _prepare(turn)
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
            try:
                with anyio.CancelScope(shield=True):
                    await events.aclose()
            finally:
                # Even if a server shutdown's cancellation interrupts the close: the usage must be written.
                await turn.finish(status, error)

    return turn, rest()
