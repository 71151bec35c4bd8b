"""Background jobs on {{ cookiecutter.task_queue }}: POST /v1/jobs stores a job and queues its id; the worker
(`python -m app.jobs.worker`) runs each request through `app.service.complete`, retries with backoff and
dead-letters a job after JOB_MAX_ATTEMPTS failed attempts."""
