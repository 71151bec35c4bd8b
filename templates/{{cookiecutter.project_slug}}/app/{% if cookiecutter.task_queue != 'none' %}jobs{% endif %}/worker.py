{%- if cookiecutter.task_queue == 'arq' -%}
"""The job worker (arq on Redis): `arq app.jobs.worker.WorkerSettings` or `python -m app.jobs.worker`.

Delivery: arq leaves a job in its queue until an attempt finishes, guarded by an in-progress key that
expires JOB_TIMEOUT_S + 10 s after the attempt started. A worker that is stopped (SIGTERM) cancels its attempts
and they are queued again at once; a worker that dies (SIGKILL, OOM) leaves the key to expire, and then
another worker picks the job up. Either way the job runs again; `runner.execute` makes that safe.
"""

import logging
from typing import Any

from arq import Retry, func, run_worker
from arq.connections import RedisSettings

from app import service
from app.db.base import run_db, upgrade
from app.jobs.config import get_job_settings
from app.jobs.runner import execute
from app.settings import get_settings

log = logging.getLogger("app.jobs")
_settings = get_job_settings()


async def run_job(ctx: dict[str, Any], job_id: str) -> str:
    outcome = await execute(job_id)
    if outcome.kind == "retry":
        assert outcome.retry_in is not None
        raise Retry(defer=outcome.retry_in)
    return outcome.kind


async def startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    if settings.auto_migrate:
        await run_db(upgrade)
    service.configure(settings)


async def shutdown(ctx: dict[str, Any]) -> None:
    await service.shutdown()


class WorkerSettings:
    # One more arq try than JOB_MAX_ATTEMPTS: arq also counts attempts lost with a dead worker, and the extra
    # try lets `execute` record the dead-letter state instead of arq dropping the job silently.
    functions = [func(run_job, name="run_job", max_tries=_settings.job_max_attempts + 1)]
    redis_settings = RedisSettings.from_dsn(_settings.redis_url)
    queue_name = _settings.job_queue_name
    max_jobs = _settings.worker_concurrency
    job_timeout = _settings.job_timeout_s
    keep_result = 3600
    on_startup = startup
    on_shutdown = shutdown


if __name__ == "__main__":
    logging.basicConfig(level=get_settings().log_level)
    run_worker(WorkerSettings)  # type: ignore[arg-type]
{%- else -%}
"""The job worker (Celery): `celery -A app.jobs.worker worker` or `python -m app.jobs.worker`.

Delivery: tasks are acknowledged only after they finish (acks_late) and rejected back to the queue when the
worker process running them dies (reject_on_worker_lost). A whole worker that is killed leaves its message
unacknowledged; the broker hands it out again (RabbitMQ at once, Redis after the visibility timeout). Either way
the job runs again; `runner.execute` makes that safe.
"""

import asyncio
import logging
from typing import Any

from celery import Celery, Task, signals

from app import service
from app.db.base import get_engine, upgrade
from app.jobs.config import get_job_settings
from app.jobs.runner import execute
from app.settings import get_settings

log = logging.getLogger("app.jobs")
_settings = get_job_settings()

celery = Celery("app", broker=_settings.celery_broker_url or _settings.redis_url)
celery.conf.update(
    task_default_queue=_settings.job_queue_name,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_ignore_result=True,  # job state lives in the jobs table
    worker_prefetch_multiplier=1,
    worker_concurrency=_settings.worker_concurrency,
    task_soft_time_limit=_settings.job_timeout_s,
    task_time_limit=_settings.job_timeout_s + 30,
    broker_connection_retry_on_startup=True,
    broker_transport_options={
        "visibility_timeout": _settings.job_redelivery_s or max(_settings.job_timeout_s, _settings.job_retry_max_s) + 60
    },
)

_loop: asyncio.AbstractEventLoop | None = None


def _run(coro: Any) -> Any:
    """One event loop per worker process, kept for its lifetime (the gateway's HTTP clients live on it)."""
    global _loop
    if _loop is None:
        _loop = asyncio.new_event_loop()
    return _loop.run_until_complete(coro)


@celery.task(name="app.jobs.run_job", bind=True, max_retries=None)
def run_job(self: Task, job_id: str) -> str:
    outcome = _run(execute(job_id))
    if outcome.kind == "retry":
        assert outcome.retry_in is not None
        raise self.retry(countdown=outcome.retry_in.total_seconds())
    return outcome.kind


@signals.worker_init.connect
def _migrate(**_: Any) -> None:
    settings = get_settings()
    if settings.auto_migrate:
        upgrade()


@signals.worker_process_init.connect
def _after_fork(**_: Any) -> None:
    # Connections opened before the fork must not be shared with the parent.
    get_engine().dispose(close=False)
    service.configure(get_settings())


@signals.worker_process_shutdown.connect
def _close(**_: Any) -> None:
    if _loop is not None:
        _loop.run_until_complete(service.shutdown())


if __name__ == "__main__":
    celery.worker_main(["worker", "--loglevel=INFO"])
{%- endif %}
