import pytest
from fastapi.testclient import TestClient

from app.settings import Settings


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_database_and_fake_provider(client: TestClient) -> None:
    body = client.get("/readyz").json()
    assert body["status"] == "ok"
    assert body["fake_provider"] is True and body["providers"] == ["fake"]


def test_metrics_exposes_the_wake_signal_and_request_counts(client: TestClient, auth_headers: dict[str, str]) -> None:
    client.post("/v1/chat/completions", headers=auth_headers,
                json={"messages": [{"role": "user", "content": "hi"}]})
    text = client.get("/metrics").text
    assert "aistarter_requests_total" in text
    assert 'aistarter_tokens_total{direction="output",model="fake-1"}' in text
    assert "# TYPE aistarter_model_pending_requests gauge" in text


def test_models_lists_the_fake_model_offline(client: TestClient, auth_headers: dict[str, str]) -> None:
    body = client.get("/v1/models", headers=auth_headers).json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["fake-1"]


def test_request_id_is_echoed(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


def test_validation_errors_are_one_line_openai_errors(client: TestClient, auth_headers: dict[str, str]) -> None:
    response = client.post("/v1/chat/completions", headers=auth_headers,
                           json={"messages": [{"role": "system", "content": "only a system turn"}]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "role 'user'" in error["message"]


def test_settings_accept_the_names_infra_sets(monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://app:pw@postgres:5432/app")
    monkeypatch.setenv("MODEL_COLD_START_WAIT_MS", "4321")
    settings = Settings(_env_file=None)
    assert settings.database_url == "postgresql+psycopg://app:pw@postgres:5432/app"
    assert settings.latency_budget_ms == 4321
{%- if 'local' in cookiecutter.providers.split(',') %}
    monkeypatch.setenv("LOCAL_MODEL_BASE_URL", "http://model-server:8000/v1")
    monkeypatch.setenv("LOCAL_MODEL_NAME", "served-model")
    settings = Settings(_env_file=None)
    assert settings.local_base_url == "http://model-server:8000/v1" and settings.credentials("local")
    assert settings.model_map["served-model"] == "local" and settings.provider_models["local"] == "served-model"
{%- endif %}


def test_unsupported_openai_features_are_refused_not_ignored(client: TestClient, auth_headers: dict[str, str]) -> None:
    base = {"messages": [{"role": "user", "content": "hi"}]}
    for extra, word in (({"n": 2}, "n:"), ({"functions": [{"name": "f"}]}, "functions:"),
                        ({"tool_choice": {"type": "function", "function": {"name": "g"}}}, "tool_choice:")):
        response = client.post("/v1/chat/completions", headers=auth_headers, json={**base, **extra})
        assert response.status_code == 400 and word in response.json()["error"]["message"]
    assert client.post("/v1/chat/completions", headers=auth_headers, json={**base, "n": 1}).status_code == 200
