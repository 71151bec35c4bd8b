"""The FastAPI application: `create_app(settings)` for tests and workers, module-level `app` for servers."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import playground, service
from app.api import chat, feedback, interactions, system{% if cookiecutter.usage_billing != 'none' %}, usage{% endif %}{% if cookiecutter.streaming == 'websocket' %}, ws{% endif %}
from app.api.middleware import RequestContext, install_error_handlers
{%- if cookiecutter.auth == 'api_key' %}
from app.auth.ratelimit import FAILED_AUTH, LIMITER
{%- endif %}
from app.db import base as db
{%- if cookiecutter.usage_billing == 'stripe' %}
from app.metering import stripe as stripe_metering  # registers the outbox and dead-letter metrics, key or not
{%- endif %}
from app.metrics import serve_internal
from app.settings import Settings, get_settings, refuse_toys

log = logging.getLogger("app")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    refuse_toys(settings)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # httpx logs every upstream call at INFO; the interaction records already hold that, with less noise.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    db.configure(settings.database_url)
{%- if cookiecutter.auth == 'api_key' %}
    LIMITER.configure(settings.rate_limit_rps, settings.rate_limit_burst)
    FAILED_AUTH.clear()
{%- endif %}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            await db.run_db(db.upgrade, settings.database_url)
{%- if cookiecutter.auth == 'api_key' %}
        if settings.api_keys is not None:
            from app.auth.keys import seed

            added = await db.run_db(seed, settings.api_keys.get_secret_value())
            log.info("AISTARTER_API_KEYS: %d new key(s) stored", added)
{%- endif %}
        service.configure(settings)
        internal = None if settings.metrics_port is None else serve_internal(settings.metrics_port,
                                                                             settings.metrics_host)
        # Everything built so far lives as long as the process. Freezing it keeps the collector from
        # re-scanning it: without this, full collections stalled every open stream for 60-90 ms under load
        # (measured with bench/stream_overhead.py at concurrency 16).
        gc.collect()
        gc.freeze()
{%- if cookiecutter.usage_billing == 'stripe' %}
        import anyio

        async with anyio.create_task_group() as tg:
            if settings.stripe_api_key is not None:
                tg.start_soon(stripe_metering.run_forever, settings)
            else:
                log.warning("STRIPE_API_KEY is not set: usage piles up in the outbox until it is")
            yield
            tg.cancel_scope.cancel()
{%- else %}
        yield
{%- endif %}
        await service.shutdown()
        if internal is not None:
            internal.shutdown()
            internal.server_close()

    # The interactive docs list every route and schema to anyone: development only.
    docs = settings.app_env.strip().lower() != "production"
    app = FastAPI(title="{{ cookiecutter.project_name }}", version="0.1.0", lifespan=lifespan,
                  docs_url="/docs" if docs else None, redoc_url="/redoc" if docs else None,
                  openapi_url="/openapi.json" if docs else None)
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(system.router)
    if settings.metrics_port is None:
        app.include_router(system.internal_router)
    app.include_router(chat.router)
    app.include_router(interactions.router)
    app.include_router(feedback.router)
    if settings.playground_on():
        app.include_router(playground.router)
{%- if cookiecutter.usage_billing != 'none' %}
    app.include_router(usage.router)
{%- endif %}
{%- if cookiecutter.streaming == 'websocket' %}
    app.include_router(ws.router)
{%- endif %}
{%- if cookiecutter.vector_store != 'none' %}
    from app.memory.router import router as memory_router

    app.include_router(memory_router)
{%- endif %}
{%- if cookiecutter.task_queue != 'none' %}
    from app.jobs.router import router as jobs_router

    app.include_router(jobs_router)
{%- endif %}
{%- if cookiecutter.use_case == 'agents' %}
    from app.agents.router import router as agents_router

    app.include_router(agents_router)
{%- endif %}
{%- if cookiecutter.observability != 'none' %}
    from app import telemetry

    telemetry.setup(app, settings)
{%- endif %}
    app.add_middleware(RequestContext, max_body_bytes=settings.max_body_bytes)
    return app


app = create_app()
