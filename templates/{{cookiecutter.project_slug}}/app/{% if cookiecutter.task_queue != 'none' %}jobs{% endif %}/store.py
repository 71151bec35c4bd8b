"""Job state transitions. Each is one short transaction, guarded by the current status so that two workers
(or a retried delivery of the same message) can never both finish a job."""

import hashlib
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from app.db.base import session_scope, utcnow
from app.jobs.models import TERMINAL, Job

RUNNABLE = ("queued", "retrying", "running")  # "running" too: the worker that had it may have died


def request_sha256(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class IdempotencyConflict(Exception):
    """The idempotency key was used before with a different request body."""


def create(tenant: str, payload: dict[str, Any], idempotency_key: str | None, max_attempts: int) -> tuple[Job, bool]:
    """Insert a queued job, or return the tenant's existing job for this idempotency key. -> (job, created)"""
    digest = request_sha256(payload)
    if idempotency_key is not None:
        existing = _by_key(tenant, idempotency_key)
        if existing is not None:
            if existing.request_sha256 != digest:
                raise IdempotencyConflict(idempotency_key)
            return existing, False
    job = Job(
        id=f"job_{uuid.uuid4().hex}",
        tenant_id=tenant,
        idempotency_key=idempotency_key,
        request_sha256=digest,
        status="queued",
        attempts=0,
        max_attempts=max_attempts,
        payload=payload,
        result={"items": {}},
    )
    try:
        with session_scope() as session:
            session.add(job)
    except IntegrityError:
        # Two identical requests raced; the unique constraint let exactly one insert win.
        existing = _by_key(tenant, idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        if existing.request_sha256 != digest:
            raise IdempotencyConflict(idempotency_key) from None
        return existing, False
    return job, True


def _by_key(tenant: str, key: str) -> Job | None:
    with session_scope() as session:
        return session.scalar(select(Job).where(Job.tenant_id == tenant, Job.idempotency_key == key))


def get(job_id: str, tenant: str | None = None) -> Job | None:
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is None or (tenant is not None and job.tenant_id != tenant):
            return None
        return job


def start_attempt(job_id: str) -> Job | None:
    """Claim the job for one attempt (attempts += 1). None when it is finished already or unknown."""
    now = utcnow()
    with session_scope() as session:
        claimed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.in_(RUNNABLE))
            .values(status="running", attempts=Job.attempts + 1, started_at=now, updated_at=now, next_attempt_at=None)
        ).rowcount
        return session.get(Job, job_id) if claimed else None


def save_item(job_id: str, index: int, item: dict[str, Any]) -> None:
    """Persist one finished request of the job, so a later attempt does not call the model for it again."""
    with session_scope() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None or job.status in TERMINAL:
            return
        items = dict(job.result.get("items", {}))
        items.setdefault(str(index), item)
        job.result = {**job.result, "items": items}
        job.updated_at = utcnow()


def finish(job_id: str, status: str, *, usage: dict[str, Any] | None = None, error: str | None = None) -> bool:
    """Move a running job to a terminal state. False if another attempt finished it first."""
    assert status in TERMINAL
    now = utcnow()
    with session_scope() as session:
        values: dict[str, Any] = {"status": status, "error": error, "finished_at": now, "updated_at": now}
        if usage is not None:
            values["usage"] = usage
        return bool(
            session.execute(update(Job).where(Job.id == job_id, Job.status == "running").values(**values)).rowcount
        )


def schedule_retry(job_id: str, error: str, at: datetime) -> bool:
    now = utcnow()
    with session_scope() as session:
        return bool(
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "running")
                .values(status="retrying", error=error, next_attempt_at=at, updated_at=now)
            ).rowcount
        )


def count_by_status() -> dict[str, int]:
    with session_scope() as session:
        return dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())


def retry_delay(attempt: int, base_s: float, max_s: float, jitter: float) -> timedelta:
    """Exponential backoff with jitter (`jitter` in [0, 1) scales the delay down to spread retries out)."""
    return timedelta(seconds=min(max_s, base_s * 2 ** max(0, attempt - 1)) * (1 - 0.5 * jitter))
