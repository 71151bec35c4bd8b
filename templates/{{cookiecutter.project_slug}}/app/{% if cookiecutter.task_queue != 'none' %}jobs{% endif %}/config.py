"""Background job settings, read from the environment (and `.env`)."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class JobSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    redis_url: str = "redis://127.0.0.1:6379/0"
{%- if cookiecutter.task_queue == 'celery' %}
    # Defaults to REDIS_URL (what the generated infra deploys); an amqp:// URL switches to RabbitMQ.
    celery_broker_url: str | None = None
{%- endif %}
    job_queue_name: str = "{{ 'arq:queue' if cookiecutter.task_queue == 'arq' else 'celery' }}"
    job_max_attempts: int = Field(default=3, ge=1, le=50, description="Attempts before a job is dead-lettered.")
    job_retry_base_s: float = Field(default=2.0, ge=0, description="First retry delay; doubles per attempt.")
    job_retry_max_s: float = Field(default=300.0, ge=0)
    job_timeout_s: float = Field(default=600.0, gt=0, description="Longest one attempt may run.")
    job_max_requests: int = Field(default=100, ge=1, description="Chat requests allowed in one job.")
    worker_concurrency: int = Field(default=4, ge=1)
{%- if cookiecutter.task_queue == 'celery' %}
    # Redis broker only: how long an unacknowledged message (its worker died) waits before redelivery.
    # Default: longer than any attempt or retry countdown, so a slow job is never run twice at once.
    job_redelivery_s: float | None = Field(default=None, gt=0)
{%- endif %}


@lru_cache
def get_job_settings() -> JobSettings:
    return JobSettings()
