"""Handing job ids to the {{ cookiecutter.task_queue }} queue, and reading its depth for /metrics."""

import asyncio
from datetime import timedelta

import redis
{%- if cookiecutter.task_queue == 'arq' %}
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
{%- endif %}

from app.jobs.config import get_job_settings
{%- if cookiecutter.task_queue == 'arq' %}

_pool: ArqRedis | None = None
_lock = asyncio.Lock()


async def _arq() -> ArqRedis:
    global _pool
    async with _lock:
        if _pool is None:
            settings = get_job_settings()
            _pool = await create_pool(
                RedisSettings.from_dsn(settings.redis_url), default_queue_name=settings.job_queue_name
            )
        return _pool


async def enqueue(job_id: str, defer: timedelta | None = None) -> None:
    """Queue the job. The arq job id is the job id, so enqueueing a job that is already queued is a no-op."""
    pool = await _arq()
    await pool.enqueue_job("run_job", job_id, _job_id=job_id, _defer_by=defer)


async def close() -> None:
    global _pool
    if _pool is not None:
        pool, _pool = _pool, None
        await pool.aclose()


def depth() -> int:
    """Jobs waiting in the queue (arq keeps them, deferred retries included, in a sorted set)."""
    settings = get_job_settings()
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return int(client.zcard(settings.job_queue_name))
    finally:
        client.close()
{%- else %}


async def enqueue(job_id: str, defer: timedelta | None = None) -> None:
    """Publish the job; the Celery task id is the job id. Publishing is blocking I/O, so it runs in a thread."""
    from app.jobs.worker import run_job

    countdown = defer.total_seconds() if defer else None
    queue = get_job_settings().job_queue_name
    await asyncio.to_thread(run_job.apply_async, args=[job_id], task_id=job_id, countdown=countdown, queue=queue)


async def close() -> None:
    return None


def depth() -> int:
    """Messages waiting in the broker queue (a Redis list, or a RabbitMQ queue's ready count)."""
    settings = get_job_settings()
    url = settings.celery_broker_url or settings.redis_url
    if url.startswith(("redis://", "rediss://")):
        client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return int(client.llen(settings.job_queue_name))
        finally:
            client.close()
    from app.jobs.worker import celery

    with celery.connection_for_read() as conn:
        return int(conn.default_channel.queue_declare(queue=settings.job_queue_name, passive=True).message_count)
{%- endif %}
