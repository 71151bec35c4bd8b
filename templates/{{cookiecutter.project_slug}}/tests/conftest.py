"""Shared fixtures. Tests run on SQLite by default; with DATABASE_URL pointing at PostgreSQL they create a
uniquely named database for the run and drop it afterwards."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# The host's configuration must not leak into tests (a real OPENAI_API_KEY would turn the fake off).
_DATABASE_URL = os.environ.get("DATABASE_URL")
from app.settings import Settings  # noqa: E402

for _name in Settings.model_fields:
    os.environ.pop(_name.upper(), None)

from fastapi.testclient import TestClient  # noqa: E402

from app.main import create_app  # noqa: E402
from tests.servers import StubUpstream, serve  # noqa: E402
{%- if cookiecutter.vector_store != 'none' %}

# Every test (chat included, since chat retrieves) gets isolated vector memory with the fake embedder.
pytest_plugins = ["tests.memory_support"]
{%- endif %}

REQUIRE_SERVICES = os.environ.get("AISTARTER_REQUIRE_SERVICES") == "1"
PROJECT = Path(__file__).resolve().parents[1]


def _unavailable(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (AISTARTER_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not _DATABASE_URL or _DATABASE_URL.startswith("sqlite"):
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    server = make_url(Settings(_env_file=None, database_url=_DATABASE_URL).database_url)
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # unreachable server, wrong credentials
        admin.dispose()
        _unavailable(f"PostgreSQL at {server.render_as_string(hide_password=True)} unavailable: {exc}")
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        from app.db import base

        if base._engine is not None:
            base._engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def make_settings(database_url: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "prompts_dir": str(PROJECT / "prompts"),
            "fake_token_delay_ms": 1.0,
            "log_level": "WARNING",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def headers_for(tenant: str) -> dict[str, str]:
    """Headers that authenticate as `tenant` (none needed when auth=none). Needs a migrated database."""
{%- if cookiecutter.auth == 'api_key' %}
    from app.auth.keys import create_key

    _, secret = create_key(tenant)
    return {"Authorization": f"Bearer {secret}"}
{%- else %}
    return {}
{%- endif %}


@pytest.fixture
def auth_headers(client: TestClient, tenant: str) -> dict[str, str]:
    return headers_for(tenant)


@pytest.fixture
def live(make_settings: Callable[..., Settings], tenant: str) -> Callable[..., Any]:
    """`with live(**settings) as (url, headers):` the app on a real socket, with credentials for `tenant`."""

    @contextmanager
    def run(**overrides: Any) -> Iterator[tuple[str, dict[str, str]]]:
        with serve(create_app(make_settings(**overrides))) as url:
            yield url, headers_for(tenant)

    return run


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture
def stub() -> Iterator[tuple[StubUpstream, str]]:
    upstream = StubUpstream()
    with serve(upstream.app) as url:
        yield upstream, url


def upstream_settings(url: str, providers: list[str]) -> dict[str, Any]:
    """Settings overrides that point each named provider at the stub upstream."""
    values: dict[str, Any] = {}
    for name in providers:
        if name == "openai":
            values.update(openai_api_key="sk-test", openai_base_url=f"{url}/v1")
        elif name == "anthropic":
            values.update(anthropic_api_key="sk-ant-test", anthropic_base_url=url)
        elif name == "gemini":
            values.update(gemini_api_key="gem-test", gemini_base_url=url)
        elif name == "local":
            values.update(local_base_url=f"{url}/local/v1")
    return values
