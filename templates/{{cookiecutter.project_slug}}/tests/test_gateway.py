"""Gateway behaviour: fallback order, bounded retries, first-chunk timeouts, circuit breaker, routing."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db.base import session_scope
from app.db.models import Interaction
from app.gateway.breaker import CircuitBreaker
from app.main import create_app
from app.settings import DEFAULT_PROVIDER_MODELS, Settings
from tests.conftest import headers_for, upstream_settings
from tests.servers import Behaviour, StubUpstream, parse_sse

PROVIDERS: list[str] = [{% for p in cookiecutter._blueprint.stack.gateway.providers %}"{{ p }}"{% if not loop.last %}, {% endif %}{% endfor %}]
FIRST = PROVIDERS[0]
MODEL = DEFAULT_PROVIDER_MODELS[FIRST]


def chat(url: str, headers: dict[str, str], **body: Any) -> httpx.Response:
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **body}
    return httpx.post(f"{url}/v1/chat/completions", headers=headers, json=payload, timeout=15)


def record(url: str, headers: dict[str, str], response: httpx.Response) -> dict[str, Any]:
    interaction = response.headers["x-interaction-id"]
    return httpx.get(f"{url}/v1/interactions/{interaction}", headers=headers, timeout=5).json()


def test_retry_on_500_then_success_on_the_same_provider(live: Any, stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    upstream.plan(FIRST, Behaviour(status=500))
    with live(providers=[FIRST], fallback=[], retries=1, **upstream_settings(stub_url, [FIRST])) as (url, headers):
        response = chat(url, headers)
        assert response.status_code == 200
        rec = record(url, headers, response)
    assert len(upstream.calls_to(FIRST)) == 2
    assert rec["provider"] == FIRST and [a["status"] for a in rec["attempts"]] == [500]


def test_upstream_connections_are_reused_across_requests_and_retries(live: Any,
                                                                     stub: tuple[StubUpstream, str]) -> None:
    # A new connection per request is a TCP and TLS handshake (2-3 round trips) on every first token.
    upstream, stub_url = stub
    upstream.plan(FIRST, Behaviour(status=500))
    with live(providers=[FIRST], fallback=[], retries=1, **upstream_settings(stub_url, [FIRST])) as (url, headers):
        for stream in (True, False, True, True):
            assert chat(url, headers, stream=stream).status_code == 200
    calls = upstream.calls_to(FIRST)
    assert len(calls) == 5 and len({c.peer for c in calls}) == 1, [c.peer for c in calls]


def test_retries_are_bounded_and_exhaustion_is_a_502(live: Any, stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    upstream.plan(FIRST, *[Behaviour(status=500)] * 5)
    with live(providers=[FIRST], fallback=[], retries=2, **upstream_settings(stub_url, [FIRST])) as (url, headers):
        response = chat(url, headers)
    assert response.status_code == 502
    assert "every provider failed" in response.json()["error"]["message"]
    assert len(upstream.calls_to(FIRST)) == 3  # 1 try + 2 retries


def test_upstream_rate_limits_surface_as_429_with_retry_after(live: Any, stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    upstream.plan(FIRST, *[Behaviour(status=429)] * 3)
    with live(providers=[FIRST], fallback=[], retries=1, **upstream_settings(stub_url, [FIRST])) as (url, headers):
        response = chat(url, headers)
    assert response.status_code == 429 and response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert len(upstream.calls_to(FIRST)) == 2  # 429 is retried (with backoff) before giving up


def test_client_errors_are_not_retried(live: Any, stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    upstream.plan(FIRST, Behaviour(status=400))
    with live(providers=PROVIDERS, retries=2, **upstream_settings(stub_url, PROVIDERS)) as (url, headers):
        response = chat(url, headers)
    assert response.status_code == 400
    assert len(upstream.calls) == 1


@pytest.mark.skipif(len(PROVIDERS) < 2, reason="fallback needs two providers in the blueprint")
def test_fallback_to_the_next_provider_when_the_first_returns_500(live: Any, stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    second = PROVIDERS[1]
    upstream.plan(FIRST, Behaviour(status=500), Behaviour(status=500))
    with live(providers=PROVIDERS, fallback=PROVIDERS, retries=1,
              **upstream_settings(stub_url, PROVIDERS)) as (url, headers):
        response = chat(url, headers)
        assert response.status_code == 200
        rec = record(url, headers, response)
        streamed = chat(url, headers, stream=True)  # first provider is healthy again
    assert response.json()["choices"][0]["message"]["content"] == "Hello from the stub."
    assert rec["provider"] == second and rec["model"] == DEFAULT_PROVIDER_MODELS[second]
    assert [(a["provider"], a["status"]) for a in rec["attempts"]] == [(FIRST, 500), (FIRST, 500)]
    assert len(upstream.calls_to(second)) == 1
    assert streamed.status_code == 200 and len(upstream.calls_to(FIRST)) == 3


@pytest.mark.skipif(len(PROVIDERS) < 2, reason="fallback needs two providers in the blueprint")
def test_first_chunk_timeout_moves_on(live: Any, stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    upstream.plan(FIRST, Behaviour(first_delay=3.0))
    with live(providers=PROVIDERS, fallback=PROVIDERS, retries=0, provider_timeouts={FIRST: 0.3},
              **upstream_settings(stub_url, PROVIDERS)) as (url, headers):
        response = chat(url, headers)
        rec = record(url, headers, response)
    assert response.status_code == 200
    assert rec["provider"] == PROVIDERS[1]
    assert rec["attempts"][0]["provider"] == FIRST and "Timeout" in rec["attempts"][0]["error"]
    assert rec["attempts"][0]["ms"] < 1500


def test_circuit_breaker_opens_then_half_opens() -> None:
    now = [0.0]
    breaker = CircuitBreaker("p", failures_to_open=3, reset_after_s=10, _clock=lambda: now[0])
    for _ in range(3):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 10.5
    assert breaker.state == "half-open"
    assert breaker.allow() and not breaker.allow()  # a single trial request
    breaker.failure()
    assert breaker.state == "open"
    now[0] = 21.0
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.allow()


def test_a_truncated_stream_ends_in_an_error_not_stop(live: Any, stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    upstream.plan(FIRST, Behaviour(truncate=True), Behaviour(truncate=True))
    with live(providers=[FIRST], fallback=[], retries=0, **upstream_settings(stub_url, [FIRST])) as (url, headers):
        with httpx.stream("POST", f"{url}/v1/chat/completions", headers=headers, timeout=15,
                          json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}) as r:
            payloads = parse_sse(r.read())
        whole = chat(url, headers)
    assert payloads[-1] != "[DONE]" and "truncated" in json.loads(payloads[-1])["error"]["message"]
    assert not any('"finish_reason":"stop"' in p for p in payloads)
    assert whole.status_code == 502 and "truncated" in whole.json()["error"]["message"]


def test_a_non_streaming_request_is_retried_after_a_mid_answer_failure(live: Any,
                                                                       stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    upstream.plan(FIRST, Behaviour(fail_after=2), Behaviour())
    with live(providers=[FIRST], fallback=[], retries=1, **upstream_settings(stub_url, [FIRST])) as (url, headers):
        response = chat(url, headers)
        rec = record(url, headers, response)
    # The client had received nothing, so the half answer is discarded and asked again.
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == "Hello from the stub."
    assert len(upstream.calls_to(FIRST)) == 2 and len(rec["attempts"]) == 1


def test_the_upstreams_own_error_text_never_reaches_the_tenant(live: Any, stub: tuple[StubUpstream, str]) -> None:
    """An error event's message (the stub's "stub failed mid-stream" / "stub overloaded") stays in the log: the
    tenant sees which provider failed and how, in the response and in the record it can read back."""
    upstream, stub_url = stub
    upstream.plan(FIRST, Behaviour(fail_after=2), Behaviour(fail_after=2))
    with live(providers=[FIRST], fallback=[], retries=0, **upstream_settings(stub_url, [FIRST])) as (url, headers):
        with httpx.stream("POST", f"{url}/v1/chat/completions", headers=headers, timeout=15, json={
                "model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}) as r:
            last = json.loads(parse_sse(r.read())[-1])
        request_id = f"err-{time.monotonic_ns()}"
        whole = httpx.post(f"{url}/v1/chat/completions", headers={**headers, "X-Request-Id": request_id}, timeout=15,
                           json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
        with session_scope() as session:  # what GET /v1/interactions/{id} shows the tenant
            row = session.scalar(select(Interaction).where(Interaction.request_id == request_id))
            stored = json.dumps([row.error, row.attempts])
    shown = [last["error"]["message"], whole.json()["error"]["message"], stored]
    assert whole.status_code == 502 and "mid-stream" in shown[0] and "stream" in shown[1]
    assert not [text for text in shown if "stub failed" in text or "stub overloaded" in text], shown


def test_the_first_token_timeout_times_the_first_token(live: Any, stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    upstream.plan(FIRST, Behaviour(token_delay=3.0), Behaviour())
    with live(providers=[FIRST], fallback=[], retries=1, timeout_s=0.5,
              **upstream_settings(stub_url, [FIRST])) as (url, headers):
        started = time.monotonic()
        response = chat(url, headers)
        rec = record(url, headers, response)
    # Metadata arrived at once; the token did not: the attempt times out and the retry answers.
    assert response.status_code == 200 and time.monotonic() - started < 2.5
    assert "Timeout" in rec["attempts"][0]["error"]
{%- if 'anthropic' in cookiecutter._blueprint.stack.gateway.providers %}


def test_anthropic_overload_right_after_message_start_is_retried(live: Any, stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    upstream.plan("anthropic", Behaviour(fail_after=0), Behaviour())
    with live(providers=["anthropic"], fallback=[], retries=1,
              **upstream_settings(stub_url, ["anthropic"])) as (url, headers):
        response = httpx.post(f"{url}/v1/chat/completions", headers=headers, timeout=15,
                              json={"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"]
    assert len(upstream.calls_to("anthropic")) == 2
{%- endif %}


@pytest.mark.parametrize("verdict", ["release", "none"])
def test_breaker_always_leaves_half_open(verdict: str) -> None:
    now = [0.0]
    breaker = CircuitBreaker("p", failures_to_open=1, reset_after_s=10, _clock=lambda: now[0])
    breaker.allow()
    breaker.failure()
    now[0] = 10.5
    assert breaker.allow()  # the trial
    if verdict == "release":  # a 4xx caused by the request, or a cancelled client
        breaker.release()
        assert breaker.state == "half-open" and breaker.allow()
    else:  # the trial never reported back: given up after another cool-down
        assert not breaker.allow()
        now[0] = 21.0
        assert breaker.allow()


def test_a_client_error_during_the_trial_does_not_wedge_the_circuit(live: Any,
                                                                     stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    upstream.plan(FIRST, Behaviour(status=500), Behaviour(status=400), Behaviour())
    with live(providers=[FIRST], fallback=[], retries=0, breaker_failures=1, breaker_reset_s=0.6,
              **upstream_settings(stub_url, [FIRST])) as (url, headers):
        assert chat(url, headers).status_code == 502
        assert httpx.get(f"{url}/readyz", timeout=5).json()["breakers"] == {FIRST: "open"}
        time.sleep(0.7)  # past the cool-down: the next request is the half-open trial
        assert chat(url, headers).status_code == 400  # the trial ends in a 4xx: no verdict
        recovered = chat(url, headers)  # before the fix: 502 "circuit open" forever
        assert httpx.get(f"{url}/readyz", timeout=5).json()["breakers"] == {FIRST: "closed"}
    assert recovered.status_code == 200 and len(upstream.calls_to(FIRST)) == 3


def test_upstream_404s_chosen_by_a_client_do_not_open_the_circuit(live: Any,
                                                                  stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    upstream.plan(FIRST, *[Behaviour(status=404)] * 4, Behaviour())
    with live(providers=[FIRST], fallback=[], retries=0, breaker_failures=2,
              **upstream_settings(stub_url, [FIRST])) as (url, headers):
        for _ in range(4):
            assert chat(url, headers).status_code == 502
        assert chat(url, headers).status_code == 200


def test_open_circuit_skips_the_provider(live: Any, stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    upstream.plan(FIRST, *[Behaviour(status=500)] * 3)
    with live(providers=[FIRST], fallback=[], retries=0, breaker_failures=2,
              **upstream_settings(stub_url, [FIRST])) as (url, headers):
        assert chat(url, headers).status_code == 502
        assert chat(url, headers).status_code == 502
        third = chat(url, headers)
    assert third.status_code == 502 and "circuit open" in third.json()["error"]["message"]
    assert len(upstream.calls_to(FIRST)) == 2


def test_unknown_model_is_a_400_naming_the_fix(make_settings: Any, tenant: str) -> None:
    settings: Settings = make_settings(**upstream_settings("http://127.0.0.1:9", [FIRST]))
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/chat/completions", headers=headers_for(tenant),
                               json={"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 400
    assert "MODEL_MAP" in response.json()["error"]["message"]


def test_fake_is_never_used_when_a_provider_is_configured(make_settings: Any) -> None:
    from app.gateway import Gateway

    gateway = Gateway(make_settings(**upstream_settings("http://127.0.0.1:9", [FIRST])))
    assert not gateway.fake_active and "fake" not in gateway.providers
    assert Gateway(make_settings()).fake_active


def test_upstream_error_text_stays_in_the_log(live: Any, stub: tuple[StubUpstream, str]) -> None:
    """An upstream 401/5xx body can quote the operator's key or internals: the tenant sees only the status."""
    upstream, stub_url = stub
    upstream.plan(FIRST, *[Behaviour(status=401)] * 3)
    with live(providers=[FIRST], fallback=[], retries=0, **upstream_settings(stub_url, [FIRST])) as (url, headers):
        response = chat(url, headers)
    assert response.status_code == 502
    message = response.json()["error"]["message"]
    assert "HTTP 401" in message and "stub says" not in message, message
