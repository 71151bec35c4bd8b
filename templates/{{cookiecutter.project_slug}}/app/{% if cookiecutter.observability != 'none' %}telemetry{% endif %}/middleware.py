"""A SERVER span per HTTP request, so model and retrieval spans of one request share a trace.

Plain ASGI rather than BaseHTTPMiddleware: it wraps streamed responses until their last byte without
buffering them, and it continues a caller's trace from an incoming `traceparent` header.
"""

from collections.abc import Callable
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from app.telemetry.logs import REQUEST_ID

_SKIP = frozenset({"/metrics", "/healthz", "/readyz"})


class TracingMiddleware:
    def __init__(self, app: Any, tracer: Callable[[], trace.Tracer]) -> None:
        self.app = app
        self.tracer = tracer  # looked up per request: tests swap the provider after the app is built

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in {"http", "websocket"} or scope.get("path") in _SKIP:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        method = scope.get("method", "WEBSOCKET")
        attributes: dict[str, Any] = {"http.request.method": method, "url.path": scope.get("path", "")}
        # Set by the app's request-context middleware, which runs before this one.
        request_id = (scope.get("state") or {}).get("request_id") or headers.get("x-request-id")
        if request_id:
            attributes["app.request_id"] = request_id
        token = REQUEST_ID.set(request_id)
        with self.tracer().start_as_current_span(
            method, context=propagate.extract(headers), kind=SpanKind.SERVER, attributes=attributes
        ) as span:

            async def send_and_record(message: dict) -> None:
                if message["type"] == "http.response.start":
                    status = message["status"]
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await self.app(scope, receive, send_and_record)
            finally:
                REQUEST_ID.reset(token)
                route = scope.get("route")
                if route is not None and getattr(route, "path", None):
                    # Route template, not the raw path: span names must stay low-cardinality.
                    span.update_name(f"{method} {route.path}")
                    span.set_attribute("http.route", route.path)
