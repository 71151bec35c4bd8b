"""One attempt at a job, shared by every queue backend: each request goes through `app.service.complete`,
the same gateway, metering and provenance path as POST /v1/chat/completions.

Exactly-once where it matters: request i of job J always uses request id `J-i`, so usage metering (keyed on
the request id) never bills a retried request twice, and finished requests are saved one by one, so a retry
after a crash resumes at the first unfinished request instead of calling the model again.
"""

import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from prometheus_client import Counter
from pydantic import ValidationError

from app import service
from app.db.base import run_db, utcnow
from app.gateway import GatewayError
from app.jobs import store
from app.jobs.config import JobSettings, get_job_settings
from app.metrics import REGISTRY
from app.schemas import ChatRequest

log = logging.getLogger("app.jobs")

JOB_OUTCOMES = Counter("aistarter_job_attempts", "Finished job attempts by outcome.", ["outcome"], registry=REGISTRY)

# Statuses a request can fail with that no retry will fix (the request itself is wrong).
PERMANENT_STATUSES = frozenset({400, 404, 413, 422})


@dataclass(frozen=True)
class Outcome:
    kind: Literal["succeeded", "retry", "dead_letter", "failed", "skipped"]
    retry_in: timedelta | None = None


def _permanent(exc: BaseException) -> bool:
    return isinstance(exc, ValidationError) or (
        isinstance(exc, GatewayError) and getattr(exc, "status", 502) in PERMANENT_STATUSES
    )


async def execute(job_id: str, settings: JobSettings | None = None) -> Outcome:
    settings = settings or get_job_settings()
    job = await run_db(store.start_attempt, job_id)
    if job is None:
        log.info("job %s: already finished or unknown; nothing to do", job_id)
        return Outcome("skipped")
    if job.attempts > job.max_attempts:
        # Claimed more often than allowed: earlier attempts died with their worker (crash, OOM kill).
        await run_db(lambda: store.finish(job_id, "dead_letter", error=f"lost by the worker {job.max_attempts} times"))
        JOB_OUTCOMES.labels("dead_letter").inc()
        return Outcome("dead_letter")
    done: dict[str, dict] = dict(job.result.get("items", {}))
    try:
        for index, body in enumerate(job.payload["requests"]):
            if str(index) in done:
                continue
            result = await service.complete(
                ChatRequest.model_validate({**body, "stream": False}),
                tenant=job.tenant_id,
                request_id=f"{job.id}-{index}",
            )
            item = {
                "index": index,
                "interaction_id": result.interaction_id,
                "request_id": result.request_id,
                "output": result.text,
                "finish_reason": result.finish_reason,
                "provider": result.provider,
                "model": result.response_model or result.model,
                "input_tokens": result.input_tokens,
                "output_tokens": result.output_tokens,
                "retrieved_document_ids": result.retrieved_document_ids,
            }
            await run_db(store.save_item, job.id, index, item)
            done[str(index)] = item
    except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded on the job
        error = f"{type(exc).__name__}: {exc}"[:2000]
        if _permanent(exc):
            await run_db(lambda: store.finish(job_id, "failed", error=error))
            log.warning("job %s failed permanently: %s", job_id, error)
            JOB_OUTCOMES.labels("failed").inc()
            return Outcome("failed")
        if job.attempts >= job.max_attempts:
            await run_db(lambda: store.finish(job_id, "dead_letter", error=error))
            log.error("job %s dead-lettered after %d attempts: %s", job_id, job.attempts, error)
            JOB_OUTCOMES.labels("dead_letter").inc()
            return Outcome("dead_letter")
        delay = store.retry_delay(job.attempts, settings.job_retry_base_s, settings.job_retry_max_s, random.random())
        await run_db(store.schedule_retry, job_id, error, utcnow() + delay)
        log.warning(
            "job %s attempt %d failed (%s); retrying in %.1fs", job_id, job.attempts, error, delay.total_seconds()
        )
        JOB_OUTCOMES.labels("retry").inc()
        return Outcome("retry", delay)
    usage = {
        "requests": len(done),
        "input_tokens": sum(item["input_tokens"] for item in done.values()),
        "output_tokens": sum(item["output_tokens"] for item in done.values()),
    }
    finished = await run_db(lambda: store.finish(job_id, "succeeded", usage=usage))
    JOB_OUTCOMES.labels("succeeded" if finished else "skipped").inc()
    return Outcome("succeeded" if finished else "skipped")
