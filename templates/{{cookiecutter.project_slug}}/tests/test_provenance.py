"""Interaction records: what produced each answer, with content kept per TRACE_CONTENT."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.provenance.redact import MAX_CHARS, keep, redact
from tests.conftest import PROJECT, headers_for

SECRET_TEXT = "mail jane.doe@example.com or call +1 415-555-0100, card 4111 1111 1111 1111"


def test_redaction_of_emails_phones_and_cards() -> None:
    out = redact(SECRET_TEXT)
    assert out == "mail [EMAIL] or call [PHONE], card [CARD]"
    assert redact("call (030) 1234 5678 now") == "call [PHONE] now"
    assert redact("card 5500-0000-0000-0004.") == "card [CARD]."


def test_redaction_leaves_ordinary_numbers_alone() -> None:
    text = "order 1234567890123456 on 2025-01-31 at 10:30, 42 items, version 1.2.3"
    assert redact(text) == text  # the 16 digits fail the Luhn check; dates and counts are not phones


def test_redaction_leaves_ip_addresses_dates_and_times_alone() -> None:
    for text in ("server 192.168.100.200 answered", "at 2025-01-31 10:30:00 UTC", "ts 2025-01-31T10:30:00.123Z",
                 "peer 10.20.30.40:8080", "uptime 12:30:45.123456"):
        assert redact(text) == text
    assert redact("call 415.555.0100: now") == "call [PHONE]: now"


@pytest.mark.parametrize("text", [
    "a" * 100_000 + "@", "a@" * 50_000, ("x" * 60 + "@") * 1_500, "@" + "a." * 50_000, "a@a." * 25_000,
    "1 " * 50_000, "+1 (1)" * 15_000,
], ids=["long-local-part", "at-runs", "many-at", "dotted-domain", "short-domains", "spaced-digits", "phone-ish"])
def test_redaction_is_linear_on_hostile_input(text: str) -> None:
    # The old email regex took ~10 s on 64 KB of this; the cap and the scanner bound it to milliseconds.
    started = time.perf_counter()
    redact(text)
    assert time.perf_counter() - started < 1.5
    assert len(keep(text, "redacted") or "") <= MAX_CHARS + 60


def test_long_content_is_capped_and_says_so() -> None:
    text = "jane@example.com " + "x" * (MAX_CHARS * 2)
    out = keep(text, "redacted") or ""
    assert out.startswith("[EMAIL] ") and out.endswith(f"[... {len(text) - MAX_CHARS} more characters not stored]")


def test_keep_per_mode() -> None:
    assert keep(SECRET_TEXT, "full") == SECRET_TEXT
    assert "[EMAIL]" in (keep(SECRET_TEXT, "redacted") or "")
    assert keep(SECRET_TEXT, "metadata") is None


@pytest.mark.parametrize("mode", ["full", "redacted", "metadata"])
def test_record_content_follows_trace_content(make_settings: Any, tenant: str, mode: str) -> None:
    with TestClient(create_app(make_settings(trace_content=mode))) as client:
        headers = headers_for(tenant)
        reply = client.post("/v1/chat/completions", headers=headers,
                            json={"messages": [{"role": "user", "content": SECRET_TEXT}]})
        record = client.get(f"/v1/interactions/{reply.json()['id']}", headers=headers).json()
    assert record["trace_content"] == mode
    if mode == "full":
        assert "jane.doe@example.com" in record["input_text"] and "4111" in record["output_text"]
    elif mode == "redacted":
        for text in (record["input_text"], record["output_text"]):
            assert "[EMAIL]" in text and "jane.doe" not in text and "4111" not in text and "555-0100" not in text
    else:
        assert record["input_text"] is None and record["output_text"] is None
    # Metadata is kept in every mode.
    assert record["usage"]["output_tokens"] > 0 and record["provider"] == "fake"


def test_record_points_at_the_exact_prompt_version(client: TestClient, auth_headers: dict[str, str]) -> None:
    reply = client.post("/v1/chat/completions", headers=auth_headers,
                        json={"messages": [{"role": "user", "content": "which prompt?"}]})
    record = client.get(f"/v1/interactions/{reply.headers['x-interaction-id']}", headers=auth_headers).json()
{%- if cookiecutter.prompt_versioning %}
    path = PROJECT / "prompts" / "assistant" / f"{record['prompt']['version']}.md"
    assert record["prompt"]["name"] == "assistant" and record["prompt"]["version"] == "v1"
{%- else %}
    path = PROJECT / "prompts" / "assistant.md"
    assert record["prompt"]["name"] == "assistant"
{%- endif %}
    assert record["prompt"]["sha256"] == hashlib.sha256(Path(path).read_text().strip().encode()).hexdigest()
    assert record["request_id"] == reply.headers["x-request-id"]
    assert record["retrieved_document_ids"] == []
    assert record["ttft_ms"] is not None and record["latency_ms"] >= record["ttft_ms"]
    assert record["finish_reason"] == "stop" and record["status"] == "ok"
    assert record["created_at"].endswith("+00:00")
{%- if cookiecutter.prompt_versioning %}


def test_a_request_can_pin_a_prompt_version(make_settings: Any, tenant: str, tmp_path: Path) -> None:
    (tmp_path / "assistant").mkdir()
    (tmp_path / "assistant" / "v1.md").write_text("first")
    (tmp_path / "assistant" / "v2.md").write_text("second")
    with TestClient(create_app(make_settings(prompts_dir=str(tmp_path)))) as client:
        headers = headers_for(tenant)
        latest = client.post("/v1/chat/completions", headers=headers,
                             json={"messages": [{"role": "user", "content": "a"}]})
        pinned = client.post("/v1/chat/completions", headers=headers,
                             json={"messages": [{"role": "user", "content": "a"}],
                                   "metadata": {"prompt_version": "v1"}})
        missing = client.post("/v1/chat/completions", headers=headers,
                              json={"messages": [{"role": "user", "content": "a"}],
                                    "metadata": {"prompt_version": "v9"}})
        versions = [client.get(f"/v1/interactions/{r.json()['id']}", headers=headers).json()["prompt"]["version"]
                    for r in (latest, pinned)]
    assert versions == ["v2", "v1"]
    assert missing.status_code == 400 and "no version 'v9'" in missing.json()["error"]["message"]
{%- endif %}
{%- if cookiecutter.auth == 'api_key' %}


def test_only_the_owning_tenant_can_read_a_record(client: TestClient, auth_headers: dict[str, str]) -> None:
    reply = client.post("/v1/chat/completions", headers=auth_headers,
                        json={"messages": [{"role": "user", "content": "mine"}]})
    record_id = reply.json()["id"]
    assert client.get(f"/v1/interactions/{record_id}", headers=auth_headers).status_code == 200
    other = client.get(f"/v1/interactions/{record_id}", headers=headers_for("someone-else"))
    assert other.status_code == 404
    assert client.get(f"/v1/interactions/{record_id}").status_code == 401
{%- endif %}


def test_unknown_record_is_404(client: TestClient, auth_headers: dict[str, str]) -> None:
    response = client.get("/v1/interactions/does-not-exist", headers=auth_headers)
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found_error"
