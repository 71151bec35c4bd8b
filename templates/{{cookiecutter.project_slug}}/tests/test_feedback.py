"""Feedback on answers: stored per interaction, owned by its tenant, shown in the interaction record."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import headers_for


def _answer(client: TestClient, headers: dict[str, str], text: str = "rate me") -> str:
    reply = client.post("/v1/chat/completions", headers=headers, json={"messages": [{"role": "user", "content": text}]})
    assert reply.status_code == 200, reply.text
    return reply.headers["x-interaction-id"]


def test_feedback_appears_in_the_record(client: TestClient, auth_headers: dict[str, str]) -> None:
    interaction = _answer(client, auth_headers)
    up = client.post(f"/v1/interactions/{interaction}/feedback", headers=auth_headers,
                     json={"rating": "down", "comment": "  missed the refund window  "})
    assert up.status_code == 201, up.text
    assert up.json()["rating"] == "down" and up.json()["interaction_id"] == interaction
    # The chat completion id works too, like GET /v1/interactions/{id}.
    again = client.post(f"/v1/interactions/chatcmpl-{interaction}/feedback", headers=auth_headers,
                        json={"rating": "up"})
    assert again.status_code == 201
    record = client.get(f"/v1/interactions/{interaction}", headers=auth_headers).json()
    # The comment is kept like the answer it is about: not at all under TRACE_CONTENT=metadata.
    comment = {% if cookiecutter.trace_content == 'metadata' %}None{% else %}"missed the refund window"{% endif %}
    assert [(f["rating"], f["comment"]) for f in record["feedback"]] == [("down", comment), ("up", None)]
    assert record["feedback"][0]["created_at"].endswith("+00:00")
    # Provenance fields the playground shows under each answer.
    assert "trace_id" in record and record["retrieved_chunks"] == [] and "cost_usd" in record


def test_another_tenants_interaction_is_not_found(client: TestClient, auth_headers: dict[str, str]) -> None:
    interaction = _answer(client, auth_headers)
    stranger = headers_for("someone-else")
{%- if cookiecutter.auth == 'api_key' %}
    reply = client.post(f"/v1/interactions/{interaction}/feedback", headers=stranger, json={"rating": "up"})
    assert reply.status_code == 404
    assert client.post("/v1/interactions/nope/feedback", headers=auth_headers,
                       json={"rating": "up"}).status_code == 404
    assert client.get(f"/v1/interactions/{interaction}", headers=auth_headers).json()["feedback"] == []
{%- else %}
    # auth=none: every caller is the same tenant, so only a missing id is refused.
    assert stranger == {}
    assert client.post(f"/v1/interactions/{interaction}/feedback", json={"rating": "up"}).status_code == 201
    assert client.post("/v1/interactions/nope/feedback", json={"rating": "up"}).status_code == 404
{%- endif %}


def test_bad_feedback_is_a_one_line_400(client: TestClient, auth_headers: dict[str, str]) -> None:
    interaction = _answer(client, auth_headers)
    for body in ({"rating": "meh"}, {"rating": "up", "stars": 5}, {}):
        reply = client.post(f"/v1/interactions/{interaction}/feedback", headers=auth_headers, json=body)
        assert reply.status_code in (400, 422), reply.text
        assert "rating" in reply.text or "stars" in reply.text


def test_comment_follows_trace_content(make_settings: Any, tenant: str) -> None:
    with TestClient(create_app(make_settings(trace_content="metadata"))) as client:
        headers = headers_for(tenant)
        interaction = _answer(client, headers)
        client.post(f"/v1/interactions/{interaction}/feedback", headers=headers,
                    json={"rating": "down", "comment": "call me at jane@example.com"})
        record = client.get(f"/v1/interactions/{interaction}", headers=headers).json()
    assert [(f["rating"], f["comment"]) for f in record["feedback"]] == [("down", None)]
