"""OpenTelemetry tracing for model calls and retrieval, following the GenAI semantic conventions.

`setup(app, settings)` installs a tracer provider with a *batched* OTLP/HTTP exporter: spans are queued in
memory and shipped by a background thread, so a slow or dead collector never blocks or fails a request (a
full queue drops spans). `model_span(...)` wraps one model call; `retrieval_span(...)` wraps one vector search.
Message content is attached only as TRACE_CONTENT allows: full, redacted, or metadata (no text at all).
"""

import asyncio
import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from app.telemetry.config import TelemetrySettings
from app.telemetry.content import filtered, to_messages

__all__ = ["configure", "model_span", "retrieval_span", "setup"]

log = logging.getLogger("app.telemetry")

BACKEND = "{{ cookiecutter.observability }}"
# GenAI semconv well-known provider names; ours that are not listed keep their own name.
_PROVIDER_NAMES = {"gemini": "gcp.gemini"}


class _State:
    provider: TracerProvider | None = None
    tracer: trace.Tracer = trace.get_tracer("app.telemetry")  # no-op until configure()/setup()
    trace_content: str = "{{ cookiecutter.trace_content }}"
    global_set: bool = False


_state = _State()


def configure(
    *,
    exporter: SpanExporter | None = None,
    processor: SpanProcessor | None = None,
    trace_content: str | None = None,
    service_name: str = "{{ cookiecutter.project_slug }}",
) -> TracerProvider:
    """Build the tracer provider this module records into. Tests pass an in-memory exporter/processor."""
    if trace_content is not None:
        if trace_content not in {"full", "redacted", "metadata"}:
            raise ValueError(f"TRACE_CONTENT must be full, redacted or metadata, got {trace_content!r}")
        _state.trace_content = trace_content
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if processor is not None:
        provider.add_span_processor(processor)
    elif exporter is not None:
        provider.add_span_processor(
            BatchSpanProcessor(exporter, max_queue_size=4096, max_export_batch_size=512, schedule_delay_millis=2000)
        )
    if _state.provider is not None:
        _state.provider.shutdown()
    _state.provider = provider
    _state.tracer = provider.get_tracer("app.telemetry")
    return provider


def setup(app: Any, settings: Any = None) -> TracerProvider:
    """Called once by `create_app()`: exporter from the environment, server spans for every request."""
    from app.telemetry.logs import install_json_logging
    from app.telemetry.middleware import TracingMiddleware

    config = TelemetrySettings()
    endpoint, headers = config.traces_endpoint(BACKEND)
    exporter = None
    if config.otel_sdk_disabled:
        log.info("tracing: OTEL_SDK_DISABLED is set; spans are not recorded")
    elif endpoint is None:
        log.warning("tracing: %s", config.missing_destination(BACKEND))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # A short timeout bounds how long the background thread waits on a dead collector.
        exporter = OTLPSpanExporter(endpoint=endpoint, headers=headers, timeout=config.otlp_timeout_s)
        log.info("tracing: exporting spans over OTLP/HTTP to %s", endpoint)
    trace_content = getattr(settings, "trace_content", None) or config.trace_content
    provider = configure(exporter=exporter, trace_content=trace_content, service_name=config.otel_service_name)
    if not config.otel_sdk_disabled and not _state.global_set:
        # Other OpenTelemetry instrumentation in the process joins the same traces. The global provider can be
        # set once per process; later apps (tests build several) keep recording through `_state`.
        trace.set_tracer_provider(provider)
        _state.global_set = True
    app.add_middleware(TracingMiddleware, tracer=lambda: _state.tracer)
    if config.log_format == "json":
        install_json_logging()
    return provider


class ModelSpan:
    """Handed to the caller of `model_span`; fill it in once the response (or the stream) has finished."""

    def __init__(self, span: Span, provider: str) -> None:
        self.span = span
        self._provider = provider
        self._started = time.perf_counter()

    def record_first_chunk(self) -> None:
        self.span.set_attribute("gen_ai.response.time_to_first_chunk", time.perf_counter() - self._started)

    def record_response(
        self,
        *,
        response_model: str | None = None,
        response_id: str | None = None,
        finish_reasons: Sequence[str] | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        input_text: str | list[dict[str, Any]] | None = None,
        output_text: str | None = None,
    ) -> None:
        attributes: dict[str, Any] = {
            "gen_ai.response.model": response_model,
            "gen_ai.response.id": response_id,
            "gen_ai.response.finish_reasons": list(finish_reasons) if finish_reasons else None,
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
        }
        if BACKEND == "phoenix":  # OpenInference names, which Phoenix's UI reads
            attributes["llm.token_count.prompt"] = input_tokens
            attributes["llm.token_count.completion"] = output_tokens
            if input_tokens is not None and output_tokens is not None:
                attributes["llm.token_count.total"] = input_tokens + output_tokens
        if input_text is not None:
            content = filtered(to_messages(input_text, "user"), _state.trace_content)
            if content is not None:
                attributes["gen_ai.input.messages"] = content
                if BACKEND == "langfuse":
                    attributes["langfuse.observation.input"] = content
                if BACKEND == "phoenix":
                    attributes["input.value"] = content
                    attributes["input.mime_type"] = "application/json"
        if output_text is not None:
            finish = finish_reasons[0] if finish_reasons else None
            content = filtered(to_messages(output_text, "assistant", finish), _state.trace_content)
            if content is not None:
                attributes["gen_ai.output.messages"] = content
                if BACKEND == "langfuse":
                    attributes["langfuse.observation.output"] = content
                if BACKEND == "phoenix":
                    attributes["output.value"] = content
                    attributes["output.mime_type"] = "application/json"
        self.span.set_attributes({k: v for k, v in attributes.items() if v is not None})


def _error_type(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        return "cancelled"  # the client went away, or the caller stopped reading the stream
    status = (
        getattr(getattr(exc, "response", None), "status_code", None)
        or getattr(exc, "upstream_status", None)
        or getattr(exc, "status_code", None)
    )
    return str(status) if status else type(exc).__qualname__


@contextmanager
def _span(name: str, attributes: dict[str, Any]) -> Iterator[Span]:
    """A CLIENT span that is a child of the current one but is not made current itself: model calls are
    wrapped around async-generator streams, which may be closed from another context, and a span that was
    attached there could not be detached cleanly."""
    span = _state.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
    try:
        yield span
    except BaseException as exc:
        span.set_attribute("error.type", _error_type(exc))
        span.set_status(Status(StatusCode.ERROR, str(exc)[:200] or type(exc).__name__))
        raise
    finally:
        span.end()


@contextmanager
def model_span(
    *,
    operation: str,
    provider: str,
    request_model: str,
    prompt_name: str | None = None,
    prompt_version: str | None = None,
) -> Iterator[ModelSpan]:
    """A CLIENT span named `{operation} {request_model}` around one model call (including its stream)."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": _PROVIDER_NAMES.get(provider, provider),
        "gen_ai.request.model": request_model,
    }
    if prompt_name is not None:
        attributes["gen_ai.prompt.name"] = prompt_name
    if prompt_version is not None:
        attributes["gen_ai.prompt.version"] = prompt_version
    if BACKEND == "langfuse":
        attributes["langfuse.observation.type"] = "generation"
        if prompt_name is not None:
            # Langfuse links a generation to a managed prompt through these (the observation.* form is what
            # its OTel ingestion reads; the short form mirrors it for dashboards that use it).
            attributes["langfuse.observation.prompt.name"] = prompt_name
            attributes["langfuse.prompt.name"] = prompt_name
        if prompt_version is not None:
            attributes["langfuse.observation.prompt.version"] = prompt_version
            attributes["langfuse.prompt.version"] = prompt_version
    if BACKEND == "phoenix":
        attributes["openinference.span.kind"] = "LLM"
        attributes["llm.model_name"] = request_model
        attributes["llm.provider"] = provider
    with _span(f"{operation} {request_model}", attributes) as span:
        yield ModelSpan(span, provider)


class RetrievalSpan:
    def __init__(self, span: Span) -> None:
        self.span = span

    def record_results(self, chunks: Sequence[Any]) -> None:
        """Ids and scores of what was retrieved: which data led to the answer, without the chunk text."""
        self.span.set_attribute("gen_ai.retrieval.document_ids", [c.document_id for c in chunks])
        self.span.set_attribute("gen_ai.retrieval.result_count", len(chunks))
        if BACKEND == "phoenix":
            for i, chunk in enumerate(chunks):
                doc_id = f"{chunk.document_id}#{chunk.chunk_index}"
                self.span.set_attribute(f"retrieval.documents.{i}.document.id", doc_id)
                self.span.set_attribute(f"retrieval.documents.{i}.document.score", float(chunk.score))


@contextmanager
def retrieval_span(*, data_source_id: str, query: str, top_k: int) -> Iterator[RetrievalSpan]:
    """A span named `retrieval {data_source_id}` around one vector search."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "retrieval",
        "gen_ai.data_source.id": data_source_id,
        "gen_ai.request.top_k": top_k,
    }
    query_content = filtered(to_messages(query, "user"), _state.trace_content)
    if query_content is not None:
        attributes["gen_ai.retrieval.query.text"] = json.loads(query_content)[0]["parts"][0]["content"]
    if BACKEND == "phoenix":
        attributes["openinference.span.kind"] = "RETRIEVER"
    if BACKEND == "langfuse":
        attributes["langfuse.observation.type"] = "retriever"
    with _span(f"retrieval {data_source_id}", attributes) as span:
        yield RetrievalSpan(span)
