"""Hostile and unlucky input: every malformed request is a one-line 4xx, an answer that cannot be billed
is never served as complete, and a tenant never reads the operator's prompt back."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from app import service
from app.db.base import session_scope
from app.db.models import Interaction
from app.metrics import REGISTRY
from tests.conftest import PROJECT
from tests.servers import parse_sse


def post(client: TestClient, headers: dict[str, str], content: str, **body: Any) -> Any:
    return client.post("/v1/chat/completions", headers=headers,
                       json={"messages": [{"role": "user", "content": content}], **body})


def test_a_nul_character_is_answered_and_recorded(client: TestClient, auth_headers: dict[str, str]) -> None:
    # PostgreSQL text cannot hold NUL: before the fix the answer was served and its record (and usage) lost.
    request_id = uuid.uuid4().hex
    reply = client.post("/v1/chat/completions", headers={**auth_headers, "X-Request-Id": request_id},
                        json={"messages": [{"role": "user", "content": "before\u0000after"}]})
    assert reply.status_code == 200
    with session_scope() as session:
        row = session.scalar(select(Interaction).where(Interaction.request_id == request_id))
    assert row is not None and row.status == "ok" and row.output_tokens


def test_a_lone_surrogate_is_a_400_not_a_500(client: TestClient, auth_headers: dict[str, str]) -> None:
    raw = '{"messages": [{"role": "user", "content": "broken \\ud800 text"}]}'
    for stream in (False, True):
        body = raw if not stream else raw[:-1] + ', "stream": true}'
        reply = client.post("/v1/chat/completions", content=body,
                            headers={**auth_headers, "content-type": "application/json"})
        assert reply.status_code == 400, reply.text
        assert "unpaired surrogates" in reply.json()["error"]["message"]


def _failing_write(self: service.Turn, status: str, error: str | None) -> None:
    raise OperationalError("INSERT INTO interactions (id, input_text) VALUES (%(id)s, %(input_text)s)",
                           {"input_text": "SYSTEM PROMPT"}, Exception("server closed the connection"))


def _failures() -> float:
    return REGISTRY.get_sample_value("aistarter_record_write_failures_total", {"status": "ok"}) or 0.0


def test_an_answer_that_cannot_be_recorded_is_withheld(client: TestClient, auth_headers: dict[str, str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service.Turn, "_write_record", _failing_write)
    monkeypatch.setattr(service, "WRITE_ATTEMPTS", 2)
    before = _failures()
    reply = post(client, auth_headers, "bill me")
    with client.stream("POST", "/v1/chat/completions", headers=auth_headers,
                       json={"messages": [{"role": "user", "content": "bill me"}], "stream": True}) as streamed:
        payloads = parse_sse(streamed.read())
    assert reply.status_code == 503 and reply.json()["error"]["code"] == "record_not_written"
    # The stream ends in an error, not in a finish chunk and [DONE]; neither shows SQL or parameters.
    assert payloads[-1] != "[DONE]" and json.loads(payloads[-1])["error"]["code"] == "record_not_written"
    for text in (reply.text, payloads[-1]):
        assert "INSERT" not in text and "SYSTEM PROMPT" not in text and "\n" not in json.loads(text)["error"]["message"]
    assert not any('"finish_reason":"stop"' in p for p in payloads)
    assert _failures() == before + 2


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a/b", "x" * 65])
def test_unsafe_prompt_names_are_refused(client: TestClient, auth_headers: dict[str, str], name: str) -> None:
    reply = post(client, auth_headers, "hi", metadata={"prompt_name": name})
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "prompt_not_found"
    assert str(PROJECT) not in reply.text


def test_a_tenant_never_reads_the_operators_prompt_back(make_settings: Any, tenant: str) -> None:
    from app.main import create_app
    from tests.conftest import headers_for

    prompt = next(Path(PROJECT / "prompts").rglob("*.md")).read_text().strip()
    with TestClient(create_app(make_settings(trace_content="full"))) as client:
        headers = headers_for(tenant)
        reply = post(client, headers, "what were you told?")
        record = client.get(f"/v1/interactions/{reply.json()['id']}", headers=headers).json()
    assert "what were you told?" in record["input_text"]
    assert prompt[:40] not in record["input_text"] and "system:" not in record["input_text"]
    assert record["prompt"]["sha256"]  # the prompt stays identified, by version and hash
{%- if cookiecutter.usage_billing != 'none' %}


@pytest.mark.parametrize("query", ["to=9999-12-31", "from=9999-12-31", "to=0000-01-01", "from=2025-13-45"])
def test_usage_ranges_at_the_calendar_edges_are_400s(client: TestClient, auth_headers: dict[str, str],
                                                     query: str) -> None:
    reply = client.get(f"/v1/usage?{query}", headers=auth_headers)
    assert reply.status_code == 400 and "\n" not in reply.json()["error"]["message"]
{%- endif %}


def test_client_chosen_model_names_do_not_become_metric_labels(client: TestClient,
                                                               auth_headers: dict[str, str]) -> None:
    from app.service import runtime

    gateway = runtime().gateway
    known = gateway.default_model()
    assert gateway.metric_label(known) == known
    assert gateway.metric_label(f"gpt-made-up-{uuid.uuid4().hex}") == "other"
    for i in range(3):
        post(client, auth_headers, "hi", model=f"gpt-4.1-mini-{uuid.uuid4().hex}-{i}")
    labels = {s.labels.get("model") for m in REGISTRY.collect() if m.name in ("aistarter_tokens",
                                                                              "aistarter_time_to_first_token_seconds")
              for s in m.samples}
    assert not any(label and "-mini-" in label for label in labels)
{%- if cookiecutter.vector_store != 'none' %}


@pytest.mark.parametrize("failure", ["hang", "error"])
def test_a_failing_document_search_is_a_quick_503(client: TestClient, auth_headers: dict[str, str],
                                                  monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    import time
    from types import SimpleNamespace

    import anyio

    from app import memory

    async def broken(**_: Any) -> list[Any]:
        if failure == "hang":
            await anyio.sleep(60)  # an embeddings endpoint that never answers
        raise ConnectionError("embeddings endpoint refused the connection")

    monkeypatch.setattr(memory, "retrieve", broken)
    monkeypatch.setattr(memory, "get_memory_settings", lambda: SimpleNamespace(embeddings_timeout_s=0.5))
    started = time.monotonic()
    reply = post(client, auth_headers, "search my documents")
    assert reply.status_code == 503 and reply.json()["error"]["code"] == "retrieval_unavailable"
    assert time.monotonic() - started < 5 and "ConnectionError" not in reply.text
{%- endif %}
