"""Tool calling, structured output and images through each provider adapter, against stub upstreams that
speak each vendor's real wire format (tool input streamed in fragments), checked with the openai SDK and
against the shape of a recorded OpenAI tool-call stream. Plus: fallback is safe with tools."""

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
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
FRAGMENTS = ['{"ci', 'ty": "Pa', 'ris"}']
# A tool-call stream as OpenAI sends it (recorded from the API; ids and times shortened): the shape every
# adapter's translated stream must have.
RECORDED_OPENAI = [
    {"id": "chatcmpl-A", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini-2024-07-18",
     "choices": [{"index": 0, "delta": {"role": "assistant", "content": None, "tool_calls": [
         {"index": 0, "id": "call_A", "type": "function", "function": {"name": "get_weather", "arguments": ""}}],
         "refusal": None}, "logprobs": None, "finish_reason": None}]},
    {"id": "chatcmpl-A", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini-2024-07-18",
     "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\""}}]},
                  "logprobs": None, "finish_reason": None}]},
    {"id": "chatcmpl-A", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini-2024-07-18",
     "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}]},
]


def shape(value: Any) -> Any:
    """Keys and value types, recursively: what a client's parser depends on."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


def sdk(url: str, headers: dict[str, str]) -> openai.OpenAI:
    key = headers.get("Authorization", "Bearer unused").removeprefix("Bearer ")
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


HISTORY = [
    {"role": "user", "content": "weather in Oslo?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 7}'},
    {"role": "user", "content": "and in Paris?"},
]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tool_call_through_each_adapter(live: Any, stub: tuple[StubUpstream, str], provider: str) -> None:
    upstream, stub_url = stub
    model = DEFAULT_PROVIDER_MODELS[provider]
    upstream.plan(provider, *[Behaviour(tool_calls=[("get_weather", FRAGMENTS)])] * 3)
    with live(providers=[provider], fallback=[], **upstream_settings(stub_url, [provider])) as (url, headers):
        client = sdk(url, headers)
        plain = client.chat.completions.create(model=model, messages=HISTORY, tools=[WEATHER],
                                               tool_choice={"type": "function", "function": {"name": "get_weather"}})
        with client.chat.completions.stream(model=model, messages=HISTORY, tools=[WEATHER]) as stream:
            final = stream.get_final_completion()
        with httpx.stream("POST", f"{url}/v1/chat/completions", headers=headers, timeout=10, json={
                "model": model, "stream": True, "tools": [WEATHER], "messages": HISTORY}) as response:
            payloads = parse_sse(response.read())
    for reply in (plain, final):
        [call] = reply.choices[0].message.tool_calls
        assert reply.choices[0].finish_reason == "tool_calls"
        assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
        assert call.id
    chunks = [json.loads(p) for p in payloads[:-1]]
    tool_chunks = [c for c in chunks if c["choices"] and "tool_calls" in c["choices"][0]["delta"]]
    start, fragments = tool_chunks[0], tool_chunks[1:]
    recorded_start, recorded_fragment, recorded_finish = (shape(c) for c in RECORDED_OPENAI)
    if provider == "anthropic":  # Claude said "Let me check." first, so the role came with that text
        start_delta = start["choices"][0]["delta"]
        assert shape(start_delta["tool_calls"]) == recorded_start["choices"][0]["delta"]["tool_calls"]
    else:
        assert shape(start) == recorded_start
    assert fragments and all(shape(c) == recorded_fragment for c in fragments)
    assert shape(chunks[-1]) == recorded_finish and chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    if provider in ("anthropic", "openai", "local"):  # Gemini sends a call whole; the others stream fragments
        assert [c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] for c in fragments] == FRAGMENTS

    body = upstream.calls_to(provider)[0].body
    if provider == "anthropic":
        assert body["tools"] == [{"name": "get_weather", "description": "Current weather for a city.",
                                  "input_schema": WEATHER["function"]["parameters"]}]
        assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}
        assistant, result = body["messages"][1], body["messages"][2]
        assert assistant == {"role": "assistant", "content": [
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}}]}
        assert result["role"] == "user" and result["content"][0] == {
            "type": "tool_result", "tool_use_id": "call_1", "content": '{"temp_c": 7}'}
        assert result["content"][1] == {"type": "text", "text": "and in Paris?"}
    elif provider == "gemini":
        assert body["tools"] == [{"functionDeclarations": [{
            "name": "get_weather", "description": "Current weather for a city.",
            "parametersJsonSchema": WEATHER["function"]["parameters"]}]}]
        assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
        assert body["contents"][1] == {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}]}
        assert body["contents"][2] == {"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp_c": 7}}}]}
    else:  # OpenAI-compatible upstreams get the request as the client sent it
        assert body["tools"] == [WEATHER]
        assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
        assert body["messages"][1:4] == [{k: v for k, v in m.items()} for m in HISTORY[:3]]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_structured_output_and_images_are_translated_or_refused(live: Any, stub: tuple[StubUpstream, str],
                                                                provider: str) -> None:
    upstream, stub_url = stub
    model = DEFAULT_PROVIDER_MODELS[provider]
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    image = "data:image/png;base64,iVBORw0KGgo="
    strict = {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": schema}}
    with live(providers=[provider], fallback=[], **upstream_settings(stub_url, [provider])) as (url, headers):
        ok = httpx.post(f"{url}/v1/chat/completions", headers=headers, timeout=10, json={
            "model": model, "response_format": strict, "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what city is this?"}, {"type": "image_url", "image_url": {"url": image}}]}]})
        loose = httpx.post(f"{url}/v1/chat/completions", headers=headers, timeout=10, json={
            "model": model, "response_format": {"type": "json_object"}, "messages": [{"role": "user", "content": "x"}]})
        single = httpx.post(f"{url}/v1/chat/completions", headers=headers, timeout=10, json={
            "model": model, "tools": [WEATHER], "parallel_tool_calls": False,
            "messages": [{"role": "user", "content": "x"}]})
    assert ok.status_code == 200, ok.text
    body = upstream.calls_to(provider)[0].body
    if provider == "anthropic":
        assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
        assert body["messages"][0]["content"] == [{"type": "text", "text": "what city is this?"}, {
            "type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]
        assert loose.status_code == 400 and loose.json()["error"]["message"].startswith(
            "anthropic does not support `response_format`")
        assert single.status_code == 200
        assert upstream.calls_to(provider)[-1].body["tool_choice"] == {"type": "auto",
                                                                       "disable_parallel_tool_use": True}
    elif provider == "gemini":
        assert body["generationConfig"]["responseMimeType"] == "application/json"
        assert body["generationConfig"]["responseJsonSchema"] == schema
        assert body["contents"][0]["parts"] == [{"text": "what city is this?"},
                                                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]
        assert loose.status_code == 200
        assert upstream.calls_to(provider)[-1].body["generationConfig"] == {"responseMimeType": "application/json"}
        assert single.status_code == 400 and "gemini does not support `parallel_tool_calls`" in single.text
    else:
        assert body["response_format"] == strict
        assert body["messages"][-1]["content"][1] == {"type": "image_url", "image_url": {"url": image}}
        assert loose.status_code == 200 and single.status_code == 200
        assert upstream.calls_to(provider)[-1].body["parallel_tool_calls"] is False


@pytest.mark.skipif(len(PROVIDERS) < 2, reason="fallback needs two providers in the blueprint")
def test_no_fallback_after_a_tool_call_chunk(live: Any, stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    first, second = PROVIDERS[0], PROVIDERS[1]
    upstream.plan(first, Behaviour(tool_calls=[("get_weather", FRAGMENTS)], tool_fail_after_start=True))
    with live(providers=PROVIDERS, fallback=PROVIDERS, retries=1,
              **upstream_settings(stub_url, PROVIDERS)) as (url, headers):
        with httpx.stream("POST", f"{url}/v1/chat/completions", headers=headers, timeout=10, json={
                "model": DEFAULT_PROVIDER_MODELS[first], "stream": True, "tools": [WEATHER],
                "messages": [{"role": "user", "content": "weather?"}]}) as response:
            payloads = parse_sse(response.read())
    assert any('"tool_calls"' in p for p in payloads)
    assert "error" in json.loads(payloads[-1])  # the stream ends in an error, not in a second provider's answer
    assert len(upstream.calls_to(first)) == 1 and upstream.calls_to(second) == []


@pytest.mark.skipif(not ("gemini" in PROVIDERS and len(PROVIDERS) > 1), reason="needs gemini plus another provider")
def test_fallback_skips_a_provider_that_cannot_serve_the_request(live: Any, stub: tuple[StubUpstream, str]) -> None:
    upstream, stub_url = stub
    first = next(p for p in PROVIDERS if p != "gemini")
    upstream.plan(first, Behaviour(status=500), Behaviour(status=500))
    order = [first, "gemini"]
    with live(providers=order, fallback=order, retries=0, **upstream_settings(stub_url, order)) as (url, headers):
        response = httpx.post(f"{url}/v1/chat/completions", headers=headers, timeout=10, json={
            "model": DEFAULT_PROVIDER_MODELS[first], "tools": [WEATHER], "parallel_tool_calls": False,
            "messages": [{"role": "user", "content": "weather?"}]})
        plain = httpx.post(f"{url}/v1/chat/completions", headers=headers, timeout=10, json={
            "model": DEFAULT_PROVIDER_MODELS[first], "messages": [{"role": "user", "content": "weather?"}]})
    # gemini cannot honour parallel_tool_calls=false, so it was never sent the request.
    assert response.status_code == 502 and "skipped: gemini does not support `parallel_tool_calls`" in response.text
    assert len(upstream.calls_to("gemini")) == 1  # only the plain request fell back to it
    assert plain.status_code == 200
