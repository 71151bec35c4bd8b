"""The official openai SDK, pointed at this app, works unchanged: streaming and not, offline (fake) and
through a real provider adapter talking to a local stub upstream."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from app.settings import DEFAULT_PROVIDER_MODELS
from tests.conftest import upstream_settings
from tests.servers import Behaviour, StubUpstream, parse_sse

PROVIDERS: list[str] = [{% for p in cookiecutter._blueprint.stack.gateway.providers %}"{{ p }}"{% if not loop.last %}, {% endif %}{% endfor %}]


def sdk(url: str, headers: dict[str, str]) -> openai.OpenAI:
    key = headers.get("Authorization", "Bearer unused").removeprefix("Bearer ")
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def test_sdk_non_streaming_against_fake(live: Any) -> None:
    with live() as (url, headers):
        reply = sdk(url, headers).chat.completions.create(
            model="any-model", messages=[{"role": "user", "content": "hello offline world"}])
    assert reply.object == "chat.completion"
    assert reply.model == "fake-1"
    assert reply.choices[0].message.content.startswith("[fake provider] You said: hello offline world")
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_sdk_streaming_against_fake_is_deterministic(live: Any) -> None:
    texts = []
    with live() as (url, headers):
        client = sdk(url, headers)
        for _ in range(2):
            stream = client.chat.completions.create(
                model="fake-1", messages=[{"role": "user", "content": "stream please"}], stream=True,
                stream_options={"include_usage": True})
            chunks = list(stream)
            texts.append("".join(c.choices[0].delta.content or "" for c in chunks if c.choices))
            assert chunks[-1].choices == [] and chunks[-1].usage is not None
            assert chunks[-1].usage.completion_tokens == len(texts[-1].split())
            assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert texts[0] == texts[1] and texts[0].startswith("[fake provider] You said: stream please")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sdk_through_each_provider_adapter_to_a_stub_upstream(live: Any, stub: tuple[StubUpstream, str],
                                                              provider: str) -> None:
    upstream, stub_url = stub
    model = DEFAULT_PROVIDER_MODELS[provider]
    with live(providers=[provider], fallback=[], **upstream_settings(stub_url, [provider])) as (url, headers):
        client = sdk(url, headers)
        reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}],
                                                stream=True, stream_options={"include_usage": True})
        chunks = list(stream)
    assert reply.choices[0].message.content == "Hello from the stub."
    assert reply.model == model + "-2025-01-01"  # the model version the provider returned
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (11, 5)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from the stub."
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (11, 5)
    assert len(upstream.calls_to(provider)) == 2
    # The system prompt from prompts/ reached the provider in its own format.
    body = upstream.calls_to(provider)[0].body
    assert "assistant of" in json.dumps(body)


def test_sse_framing_matches_openai(live: Any, stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    provider = PROVIDERS[0]
    model = DEFAULT_PROVIDER_MODELS[provider]
    with live(providers=[provider], fallback=[], **upstream_settings(stub_url, [provider])) as (url, headers):
        with httpx.stream("POST", f"{url}/v1/chat/completions", headers=headers, timeout=10, json={
            "model": model, "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "frame it"}],
        }) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            raw = response.read()
    payloads = parse_sse(raw)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    usage = chunks[-1]
    assert usage["choices"] == [] and usage["usage"] == {"prompt_tokens": 11, "completion_tokens": 5,
                                                         "total_tokens": 16}


def test_without_include_usage_no_usage_chunk(live: Any) -> None:
    with live() as (url, headers):
        with httpx.stream("POST", f"{url}/v1/chat/completions", headers=headers, timeout=10, json={
            "stream": True, "messages": [{"role": "user", "content": "no usage"}]}) as response:
            payloads = parse_sse(response.read())
    assert payloads[-1] == "[DONE]"
    assert all("usage" not in json.loads(p) for p in payloads[:-1])


def test_mid_stream_error_is_the_final_chunk_and_not_retried(live: Any, stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    provider = PROVIDERS[0]
    upstream.plan(provider, Behaviour(fail_after=2))
    with live(providers=PROVIDERS, retries=2, **upstream_settings(stub_url, PROVIDERS)) as (url, headers):
        with httpx.stream("POST", f"{url}/v1/chat/completions", headers=headers, timeout=10, json={
            "model": DEFAULT_PROVIDER_MODELS[provider], "stream": True,
            "messages": [{"role": "user", "content": "fail midway"}]}) as response:
            assert response.status_code == 200
            payloads = parse_sse(response.read())
        last = json.loads(payloads[-1])
        assert "error" in last and "mid-stream" in last["error"]["message"]
        text = "".join(json.loads(p)["choices"][0]["delta"].get("content", "") for p in payloads[1:-1])
        assert text == "Hello from"
        # Text already reached the client: no retry and no fallback, which would duplicate it.
        assert len(upstream.calls) == 1

        with pytest.raises(openai.APIError):
            upstream.plan(provider, Behaviour(fail_after=1))
            list(sdk(url, headers).chat.completions.create(
                model=DEFAULT_PROVIDER_MODELS[provider], stream=True,
                messages=[{"role": "user", "content": "fail again"}]))
