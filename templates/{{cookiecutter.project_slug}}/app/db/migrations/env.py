"""Alembic environment: one metadata for every model module the project generated."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

{% if cookiecutter.use_case == 'agents' -%}
import app.agents.models  # noqa: F401
{% endif -%}
import app.db.models  # noqa: F401  (registers the core tables on Base.metadata)
import app.evals.models  # noqa: F401  (feedback and eval runs)
{%- if cookiecutter.task_queue != 'none' %}
import app.jobs.models  # noqa: F401
{%- endif %}
{%- if cookiecutter.vector_store != 'none' %}
import app.memory.models  # noqa: F401
{%- endif %}
from app.db.base import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from app.settings import get_settings

    return get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=_url().startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        connectable = engine_from_config({"sqlalchemy.url": _url()}, prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        # batch mode: SQLite can only ALTER tables by copying them, which Alembic does in batch mode.
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
