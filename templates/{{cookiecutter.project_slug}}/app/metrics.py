"""Prometheus metrics in one registry, served at GET /metrics.

Other modules (telemetry, jobs) register their metrics on `REGISTRY` too, so one scrape sees everything.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
