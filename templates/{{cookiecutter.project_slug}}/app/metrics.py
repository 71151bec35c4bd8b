"""Prometheus metrics in one registry, served at GET /metrics (on METRICS_PORT when it is set).

Other modules (telemetry, jobs) register their metrics on `REGISTRY` too, so one scrape sees everything.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import ThreadingWSGIServer

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter("aistarter_requests", "HTTP requests by route and status.", ["route", "status"], registry=REGISTRY)
TTFT = Histogram("aistarter_time_to_first_token_seconds", "Time from request to the first model chunk.", ["model"],
                 buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32), registry=REGISTRY)
TOKENS = Counter("aistarter_tokens", "Tokens by model and direction (input/output).", ["model", "direction"],
                 registry=REGISTRY)
PROVIDER_ERRORS = Counter("aistarter_provider_errors", "Failed provider attempts by provider and reason.",
                          ["provider", "reason"], registry=REGISTRY)
FALLBACKS = Counter("aistarter_fallbacks", "Requests served by a provider after an earlier one failed.", ["provider"],
                    registry=REGISTRY)
BREAKER_OPEN = Gauge("aistarter_circuit_open", "1 while a provider's circuit breaker is open.", ["provider"],
                     registry=REGISTRY)
# The wake-from-zero signal: KEDA scales the self-hosted model server on it (see infra/).
MODEL_PENDING = Gauge("aistarter_model_pending_requests",
                      "Requests waiting for, or in flight to, the self-hosted model server.", ["model"],
                      registry=REGISTRY)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def _internal_app(environ: dict[str, object], start_response: Callable[..., object]) -> list[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path == "/metrics":
        status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, generate_latest(REGISTRY)
    elif path == "/internal/pending":
        from app.gateway.wake import PENDING

        status, ctype, body = "200 OK", "application/json", json.dumps(PENDING.snapshot()).encode()
    else:
        status, ctype, body = "404 Not Found", "text/plain", b"not found\n"
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]


def serve_internal(port: int, host: str = "0.0.0.0") -> ThreadingWSGIServer:
    """Serve /metrics and /internal/pending on their own port from a daemon thread (API and worker alike).

    A separate port keeps them off the Service the Ingress targets, and a thread keeps scrapes answering while the
    event loop is busy. Stop it with `server.shutdown()`.
    """
    server = make_server(host, port, _internal_app, ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="internal-metrics", daemon=True).start()
    return server
