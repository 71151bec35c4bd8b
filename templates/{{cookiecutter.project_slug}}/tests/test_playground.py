"""/playground: served with a strict security policy, switched off in production unless asked for."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.playground import STATIC


def test_page_and_assets_carry_security_headers(client: TestClient) -> None:
    for path in ("/playground", "/playground/static/app.js", "/playground/static/playground.css"):
        reply = client.get(path)
        assert reply.status_code == 200, path
        csp = reply.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
        assert directives["frame-ancestors"] == "'none'" and directives["default-src"] == "'none'"
        assert reply.headers["x-frame-options"] == "DENY"
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["referrer-policy"] == "no-referrer"
    assert client.get("/playground/static/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/playground/static/../settings.py").status_code == 404
    assert client.get("/playground/static/index.html").status_code == 404


def test_page_has_no_inline_script_or_style() -> None:
    html = (STATIC / "index.html").read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)
    assert "<style" not in html and " style=" not in html and " on" + "click=" not in html
    # The key lives in sessionStorage and travels in a header, never in a URL or localStorage.
    js = (STATIC / "app.js").read_text()
    assert "sessionStorage" in js and "localStorage" not in js and "api_key=" not in js
    assert "innerHTML" not in js  # model output is inserted as text only


@pytest.mark.parametrize(("env", "enabled", "served"), [
    ("development", None, True),
    ("production", None, False),
    ("production", True, True),
    ("development", False, False),
])
def test_switch(make_settings: Any, monkeypatch: pytest.MonkeyPatch, env: str, enabled: bool | None,
                served: bool) -> None:
    # Only the switch is under test here: production's refusal of dev-only defaults has its own tests
    # (tests/test_production.py), so it is turned off rather than feeding this test a production database.
    monkeypatch.setattr("app.main.refuse_toys", lambda settings: None)
    with TestClient(create_app(make_settings(app_env=env, playground_enabled=enabled))) as client:
        assert (client.get("/playground").status_code == 200) is served
        assert (client.get("/playground/static/app.js").status_code == 200) is served


def test_config_lists_prompt_versions(client: TestClient, auth_headers: dict[str, str]) -> None:
    config = client.get("/playground/config", headers=auth_headers).json()
    assert config["use_case"] == "{{ cookiecutter.use_case }}" and config["prompt_name"] == "assistant"
{%- if cookiecutter.prompt_versioning %}
    assert config["prompt_versions"][0] == "v1"
{%- else %}
    assert len(config["prompt_versions"]) == 1
{%- endif %}
{%- if cookiecutter.auth == 'api_key' %}
    assert client.get("/playground/config").status_code == 401
{%- endif %}


def test_agent_picker_only_in_agents_projects(client: TestClient) -> None:
    page, js = client.get("/playground").text, client.get("/playground/static/app.js").text
{%- if cookiecutter.use_case == 'agents' %}
    # The picker lists GET /v1/agents and chats through the agent's chat-completions endpoint, rendering the
    # `: step {...}` comments of its stream (tests/test_agents.py checks the stream carries them).
    assert '<select id="agent">' in page
    assert '"/v1/agents"' in js and "/chat/completions" in js and "X-Agent-Run-Id" in js
    assert 'startsWith("step ")' in js and "/v1/agents/runs/" in js
{%- else %}
    assert 'id="agent"' not in page and "/v1/agents" not in js  # no agents, no picker
{%- endif %}
