"""A client-chosen request id buys one answer: a reuse with another body is refused, a reuse with the same
body replays the stored answer without calling the model, and a malformed id is a 400, never replaced."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db.base import session_scope
from app.db.models import Interaction{% if cookiecutter.usage_billing != 'none' %}, UsageRecord{% endif %}
from app.settings import DEFAULT_PROVIDER_MODELS
from tests.conftest import upstream_settings
from tests.servers import Behaviour, StubUpstream, parse_sse

PROVIDERS: list[str] = [{% for p in cookiecutter._blueprint.stack.gateway.providers %}"{{ p }}"{% if not loop.last %}, {% endif %}{% endfor %}]
FIRST = PROVIDERS[0]


def model_calls(request_id: str) -> int:
    """Every model call leaves one interaction record."""
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(Interaction)
                              .where(Interaction.request_id == request_id)) or 0
{%- if cookiecutter.usage_billing != 'none' %}


def billed(request_id: str) -> int:
    with session_scope() as session:
        return sum(session.scalars(select(UsageRecord.output_tokens).where(UsageRecord.request_id == request_id)))
{%- endif %}


def ask(client: TestClient, headers: dict[str, str], key: str, content: str, **body: Any) -> httpx.Response:
    return client.post("/v1/chat/completions", headers={**headers, "Idempotency-Key": key},
                       json={"messages": [{"role": "user", "content": content}], **body})


def test_a_reused_id_with_another_body_is_a_409(client: TestClient, auth_headers: dict[str, str]) -> None:
    key = uuid.uuid4().hex
    first = ask(client, auth_headers, key, "tell me one thing")
    others = [ask(client, auth_headers, key, f"now something else, number {i}") for i in range(4)]
    assert first.status_code == 200
    for other in others:
        assert other.status_code == 409
        error = other.json()["error"]
        assert error["code"] == "idempotency_conflict" and "different request body" in error["message"]
        assert "\n" not in error["message"]
    assert model_calls(key) == 1  # before the fix: 5 answers under one id
{%- if cookiecutter.usage_billing != 'none' %}
    assert billed(key) == first.json()["usage"]["completion_tokens"]
{%- endif %}


def test_the_same_id_and_body_replays_without_calling_the_model(client: TestClient,
                                                                  auth_headers: dict[str, str]) -> None:
    key = uuid.uuid4().hex
    first = ask(client, auth_headers, key, "replay me")
    again = ask(client, auth_headers, key, "replay me")
    with client.stream("POST", "/v1/chat/completions", headers={**auth_headers, "Idempotency-Key": key},
                       json={"messages": [{"role": "user", "content": "replay me"}], "stream": True,
                             "stream_options": {"include_usage": True}}) as streamed:
        payloads = parse_sse(streamed.read())
    assert first.status_code == again.status_code == streamed.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert payloads[-1] == "[DONE]" and chunks[-1]["usage"] == first.json()["usage"]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == \
        first.json()["choices"][0]["message"]["content"]
    assert model_calls(key) == 1


def test_a_failure_before_any_answer_frees_the_id(live: Any, stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    upstream.plan(FIRST, Behaviour(status=500), Behaviour())
    body = {"model": DEFAULT_PROVIDER_MODELS[FIRST], "messages": [{"role": "user", "content": "retry me"}]}
    with live(providers=[FIRST], fallback=[], retries=0, **upstream_settings(stub_url, [FIRST])) as (url, headers):
        headers = {**headers, "Idempotency-Key": uuid.uuid4().hex}
        failed = httpx.post(f"{url}/v1/chat/completions", headers=headers, json=body, timeout=10)
        retried = httpx.post(f"{url}/v1/chat/completions", headers=headers, json=body, timeout=10)
    assert failed.status_code == 502 and retried.status_code == 200


def test_concurrent_requests_with_one_id_get_one_answer(live: Any, stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    upstream.plan(FIRST, Behaviour(first_delay=0.5))
    body = {"model": DEFAULT_PROVIDER_MODELS[FIRST], "messages": [{"role": "user", "content": "once"}]}
    statuses: list[int] = []
    # The first token's delay only makes the four requests overlap; a generous attempt timeout keeps the plan's
    # per-attempt cut (0.5 s for two providers in a 1 s budget) out of a test about ids.
    with live(providers=[FIRST], fallback=[], timeout_s=5.0, provider_timeouts={},
              **upstream_settings(stub_url, [FIRST])) as (url, headers):
        headers = {**headers, "Idempotency-Key": uuid.uuid4().hex}

        def post() -> None:
            response = httpx.post(f"{url}/v1/chat/completions", headers=headers, json=body, timeout=10)
            statuses.append(response.status_code)

        threads = [threading.Thread(target=post) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(statuses) == [200, 409, 409, 409] and len(upstream.calls_to(FIRST)) == 1


def test_malformed_ids_are_a_400_not_replaced(client: TestClient, auth_headers: dict[str, str]) -> None:
    for header in ("Idempotency-Key", "X-Request-Id"):
        for bad in ("order/42", "x" * 129, "", "a b"):
            response = client.post("/v1/chat/completions", headers={**auth_headers, header: bad},
                                   json={"messages": [{"role": "user", "content": "hi"}]})
            assert response.status_code == 400, (header, bad)
            assert response.json()["error"]["code"] == "invalid_request_id"


def test_the_clients_idempotency_key_wins_over_a_proxy_request_id(client: TestClient,
                                                                   auth_headers: dict[str, str]) -> None:
    key = uuid.uuid4().hex
    first = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]},
                        headers={**auth_headers, "Idempotency-Key": key, "X-Request-Id": uuid.uuid4().hex})
    retry = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]},
                        headers={**auth_headers, "Idempotency-Key": key, "X-Request-Id": uuid.uuid4().hex})
    assert first.headers["x-request-id"] == retry.headers["x-request-id"] == key
    assert retry.json() == first.json() and model_calls(key) == 1
