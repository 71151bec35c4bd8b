"""/v1/jobs: submit a batch of chat requests to run in the background, and read its status and results."""

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Response, status
from pydantic import BaseModel, Field

import app.jobs.metrics  # noqa: F401  (registers queue depth on /metrics)
from app.auth import current_tenant
from app.db.base import run_db
from app.jobs import queue, store
from app.jobs.config import get_job_settings
from app.jobs.models import Job
from app.schemas import ChatRequest

log = logging.getLogger("app.jobs")
router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

Tenant = Annotated[str, Depends(current_tenant)]


class JobIn(BaseModel):
    requests: list[ChatRequest] = Field(min_length=1, description="Chat completion bodies, run in order.")
    idempotency_key: str | None = Field(
        default=None, max_length=255, description="Or the Idempotency-Key header: a repeat returns the same job."
    )


class JobOut(BaseModel):
    id: str
    object: str = "job"
    status: str
    attempts: int
    max_attempts: int
    idempotency_key: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    next_attempt_at: datetime | None
    results: list[dict[str, Any]]
    usage: dict[str, Any] | None
    error: str | None

    @classmethod
    def of(cls, job: Job) -> "JobOut":
        items = job.result.get("items", {}) if job.result else {}
        return cls(
            id=job.id,
            status=job.status,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            idempotency_key=job.idempotency_key,
            created_at=job.created_at,
            updated_at=job.updated_at,
            finished_at=job.finished_at,
            next_attempt_at=job.next_attempt_at,
            results=[items[key] for key in sorted(items, key=int)],
            usage=job.usage,
            error=job.error,
        )


@router.post("", response_model=JobOut, status_code=status.HTTP_202_ACCEPTED)
async def create_job(
    body: JobIn,
    tenant: Tenant,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> JobOut:
    settings = get_job_settings()
    if len(body.requests) > settings.job_max_requests:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"a job takes at most JOB_MAX_REQUESTS={settings.job_max_requests} requests, got {len(body.requests)}",
        )
    if any(r.stream for r in body.requests):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "jobs run without streaming: drop `stream: true`")
    key = idempotency_key or body.idempotency_key
    payload = {
        "requests": [r.model_dump(exclude_none=True, exclude={"stream", "stream_options"}) for r in body.requests]
    }
    try:
        job, created = await run_db(store.create, tenant, payload, key, settings.job_max_attempts)
    except store.IdempotencyConflict:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"idempotency key {key!r} was already used with a different request body; use a new key",
        ) from None
    if created or job.status == "queued":
        # A repeat of a still-queued job enqueues it again: the first enqueue may have failed after the insert.
        try:
            await queue.enqueue(job.id)
        except Exception as exc:  # noqa: BLE001 - any broker failure means the same thing to the client
            log.error("enqueue of %s failed: %s", job.id, exc)
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"job {job.id} is stored but the queue is unreachable; repeat the request with the same "
                "Idempotency-Key to enqueue it",
                headers={"Retry-After": "5"},
            ) from exc
    if not created:
        response.status_code = status.HTTP_200_OK
    return JobOut.of(job)


@router.get("/{job_id}", response_model=JobOut)
async def get_job(job_id: str, tenant: Tenant) -> JobOut:
    job = await run_db(store.get, job_id, tenant)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id!r} for this API key")
    return JobOut.of(job)
