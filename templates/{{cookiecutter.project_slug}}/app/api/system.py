"""Liveness, readiness, Prometheus metrics and the wake signal for self-hosted model autoscaling."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app import service
from app.db.base import run_db, session_scope
from app.gateway.wake import PENDING
from app.metrics import REGISTRY

router = APIRouter(tags=["system"])
# Without METRICS_PORT (development) these join the public app; with it they are served only on that port
# (app.metrics.serve_internal), which the Service the Ingress targets does not expose.
internal_router = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process serves requests. Deliberately checks nothing else."""
    return {"status": "ok"}


def _ping() -> None:
    with session_scope() as session:
        session.execute(text("SELECT 1"))


@router.get("/readyz", response_model=None)
async def readyz() -> dict[str, Any] | JSONResponse:
    """Readiness: the database answers and the gateway is built. Breaker states are reported, not gating:
    an open circuit means the provider is down for every replica, and taking replicas out of the
    load balancer would turn a degraded answer (fallback, 502 with a reason) into connection errors."""
    try:
        await run_db(_ping)
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "database": f"{type(exc).__name__}"}, status_code=503)
    gateway = service.runtime().gateway
    return {"status": "ok", "providers": list(gateway.providers), "fake_provider": gateway.fake_active,
            "breakers": {name: breaker.state for name, breaker in gateway.breakers.items()}}


@internal_router.get("/metrics")
async def metrics() -> Response:
    # In a thread: some collectors (job counts, the metering outbox) query the database at scrape time.
    return Response(await run_db(generate_latest, REGISTRY), media_type=CONTENT_TYPE_LATEST)


@internal_router.get("/internal/pending")
async def pending() -> list[dict[str, object]]:
    """Requests waiting for each self-hosted model, for KEDA's metrics-api trigger (same as the gauge)."""
    return PENDING.snapshot()
