"""A SERVER span per HTTP request, so model and retrieval spans of one request share a trace.

Plain ASGI rather than BaseHTTPMiddleware: it wraps streamed responses until their last byte without
buffering them, and it continues a caller's trace from an incoming `traceparent` header.
"""

from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

_SKIP = frozenset({"/metrics", "/healthz", "/readyz"})


class TracingMiddleware:
    def __init__(self, app: Any, tracer_provider: trace.TracerProvider) -> None:
        self.app = app
        self.tracer = tracer_provider.get_tracer("app.telemetry.http")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in {"http", "websocket"} or scope.get("path") in _SKIP:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        method = scope.get("method", "WEBSOCKET")
        attributes: dict[str, Any] = {"http.request.method": method, "url.path": scope.get("path", "")}
        if "x-request-id" in headers:
            attributes["http.request.header.x-request-id"] = headers["x-request-id"]
        with self.tracer.start_as_current_span(
            method, context=propagate.extract(headers), kind=SpanKind.SERVER, attributes=attributes
        ) as span:

            async def send_and_record(message: dict) -> None:
                if message["type"] == "http.response.start":
                    status = message["status"]
                    span.set_attribute("http.response.status_code", status)
                    for key, value in message.get("headers", []):
                        if key.lower() == b"x-request-id":
                            span.set_attribute("app.request_id", value.decode("latin-1"))
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await self.app(scope, receive, send_and_record)
            finally:
                route = scope.get("route")
                if route is not None and getattr(route, "path", None):
                    # Route template, not the raw path: span names must stay low-cardinality.
                    span.update_name(f"{method} {route.path}")
                    span.set_attribute("http.route", route.path)
