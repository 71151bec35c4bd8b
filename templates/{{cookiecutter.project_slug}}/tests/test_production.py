"""APP_ENV=production refuses the dev-only defaults: the process exits non-zero with one line naming the
setting, never a traceback. The manifests in infra/ supply every setting checked here
(infra/tests/test_app_contract.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import REQUIRED_IN_PRODUCTION, Settings, production_problem

PROJECT = Path(__file__).resolve().parents[1]
MEMORY_ENV = ("EMBEDDINGS_PROVIDER", "OPENAI_API_KEY", "PGVECTOR_URL", "QDRANT_URL")


def production_env(**changes: str | None) -> dict[str, str]:
    """A complete production environment (what the manifests set), with `changes` applied (None removes)."""
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in Settings.model_fields and k not in REQUIRED_IN_PRODUCTION and k not in MEMORY_ENV}
    env.update({name: f"value-of-{name.lower()}" for name in REQUIRED_IN_PRODUCTION})
    env.update(APP_ENV="production", DATABASE_URL="postgresql://app:secret@db.internal:5432/app",
               LOCAL_MODEL_BASE_URL="http://model-server:8000/v1", LOG_LEVEL="WARNING")
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def start(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120, check=False)


def assert_refused(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("APP_ENV=production refuses to start: ") and needle in lines[0], lines[0]


UVICORN = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", "0"]


@pytest.mark.parametrize(("changes", "needle"), [
    ({"DATABASE_URL": None}, "DATABASE_URL is SQLite"),
    ({"DATABASE_URL": "sqlite:///./prod.db"}, "DATABASE_URL is SQLite"),
    ({name: "" for name in list(REQUIRED_IN_PRODUCTION)[-1:]}, f"{list(REQUIRED_IN_PRODUCTION)[-1]} is empty"),
    ({"PROVIDERS": '["fake"]'}, "PROVIDERS includes the dev-only `fake` provider"),
{%- if cookiecutter.vector_store != 'none' %}
    ({"EMBEDDINGS_PROVIDER": "fake"}, "`fake` embedder"),
{%- endif %}
])
def test_the_api_refuses_to_start_on_a_toy(changes: dict[str, str | None], needle: str) -> None:
    assert_refused(start(UVICORN, production_env(**changes)), needle)


def test_every_required_secret_is_checked() -> None:
    for name in REQUIRED_IN_PRODUCTION:
        env = production_env(**{name: ""})
        settings = Settings(_env_file=None, **{k.lower(): v for k, v in env.items() if k.lower() in {
            *Settings.model_fields, "local_model_base_url", "aistarter_api_keys"}})
        problem = production_problem(settings)
        assert problem is not None and problem.startswith(name), (name, problem)


def test_a_complete_production_environment_starts() -> None:
    proc = start([sys.executable, "-c", "import app.main"], production_env(
{%- if cookiecutter.vector_store != 'none' and 'openai' not in cookiecutter._blueprint.stack.gateway.providers %}
        EMBEDDINGS_PROVIDER="local", EMBEDDINGS_BASE_URL="http://embedder:8000/v1",
{%- endif %}
    ))
    assert proc.returncode == 0, proc.stderr


def test_production_serves_no_interactive_docs() -> None:
    """/docs and /openapi.json list every route to anyone: on in development, off in production."""
    script = "import app.main as m; print(sorted(getattr(r, 'path', '') for r in m.app.routes))"
    prod = start([sys.executable, "-c", script], production_env(
{%- if cookiecutter.vector_store != 'none' and 'openai' not in cookiecutter._blueprint.stack.gateway.providers %}
        EMBEDDINGS_PROVIDER="local", EMBEDDINGS_BASE_URL="http://embedder:8000/v1",
{%- endif %}
    ))
    dev = start([sys.executable, "-c", script], production_env(APP_ENV="development", DATABASE_URL=None))
    assert prod.returncode == 0 and dev.returncode == 0, prod.stderr + dev.stderr
    assert "/docs" not in prod.stdout and "/openapi.json" not in prod.stdout
    assert "/docs" in dev.stdout and "/openapi.json" in dev.stdout


def test_migrations_refuse_a_toy_too() -> None:
    assert_refused(start([sys.executable, "-m", "app.db.migrate"], production_env(DATABASE_URL=None)),
                   "DATABASE_URL is SQLite")
{%- if cookiecutter.task_queue != 'none' %}


def test_the_worker_refuses_to_start_on_a_toy() -> None:
    assert_refused(start([sys.executable, "-m", "app.jobs.worker"], production_env(DATABASE_URL=None)),
                   "DATABASE_URL is SQLite")
{%- endif %}


def test_development_keeps_the_embedded_defaults() -> None:
    proc = start([sys.executable, "-c", "import app.main"], production_env(APP_ENV="development", DATABASE_URL=None))
    assert proc.returncode == 0, proc.stderr
