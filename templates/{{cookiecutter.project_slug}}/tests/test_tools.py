"""Tool calling and structured output through the official openai SDK, offline (the fake provider calls
tools deterministically), streamed and not, checked with the SDK's own stream accumulation."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
from pydantic import BaseModel

from tests.servers import parse_sse

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"], "additionalProperties": False}}}
ADD = {"type": "function", "function": {
    "name": "add", "description": "Add two integers.",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                   "required": ["a", "b"]}}}


def sdk(url: str, headers: dict[str, str]) -> openai.OpenAI:
    key = headers.get("Authorization", "Bearer unused").removeprefix("Bearer ")
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def follow_up(question: str, message: Any, results: dict[str, str]) -> list[dict[str, Any]]:
    """The conversation a client sends back: the question, the assistant's tool calls, one result each."""
    return [{"role": "user", "content": question}, message.model_dump(exclude_none=True),
            *({"role": "tool", "tool_call_id": c.id, "content": results[c.function.name]}
              for c in message.tool_calls)]


def test_non_streaming_tool_round_trip(live: Any) -> None:
    question = "What is the weather? use get_weather Paris"
    with live() as (url, headers):
        client = sdk(url, headers)
        first = client.chat.completions.create(model="fake-1", messages=[{"role": "user", "content": question}],
                                               tools=[WEATHER, ADD])
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert choice.message.content is None
        [call] = choice.message.tool_calls
        assert call.type == "function" and call.id.startswith("call_") and call.function.name == "get_weather"
        assert json.loads(call.function.arguments) == {"city": "Paris"}
        second = client.chat.completions.create(
            model="fake-1", tools=[WEATHER, ADD],
            messages=follow_up(question, choice.message, {"get_weather": "18 C and sunny"}))
    assert second.choices[0].finish_reason == "stop" and not second.choices[0].message.tool_calls
    assert "18 C and sunny" in second.choices[0].message.content


def test_streaming_tool_round_trip_matches_non_streaming(live: Any) -> None:
    messages = [{"role": "user", "content": "call get_weather Oslo"}]
    with live() as (url, headers):
        client = sdk(url, headers)
        plain = client.chat.completions.create(model="fake-1", messages=messages, tools=[WEATHER])
        with client.chat.completions.stream(model="fake-1", messages=messages, tools=[WEATHER]) as stream:
            events = [e.type for e in stream]
            final = stream.get_final_completion()
        assert "tool_calls.function.arguments.delta" in events and "tool_calls.function.arguments.done" in events
        message = final.choices[0].message
        assert final.choices[0].finish_reason == "tool_calls" and message.content is None
        assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls] == \
            [(c.id, c.function.name, c.function.arguments) for c in plain.choices[0].message.tool_calls]
        with client.chat.completions.stream(
                model="fake-1", tools=[WEATHER],
                messages=follow_up(messages[0]["content"], message, {"get_weather": "rain, 7 C"})) as stream:
            answer = stream.get_final_completion()
    assert "rain, 7 C" in answer.choices[0].message.content


def test_streamed_tool_chunks_have_openais_shape(live: Any) -> None:
    with live() as (url, headers):
        with httpx.stream("POST", f"{url}/v1/chat/completions", headers=headers, timeout=10, json={
                "model": "fake-1", "stream": True, "tools": [WEATHER],
                "messages": [{"role": "user", "content": "get_weather Lisbon"}]}) as response:
            payloads = parse_sse(response.read())
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    # OpenAI's sequence: role + the call's index/id/type/name with empty arguments, then argument fragments
    # that carry only index and function.arguments, then an empty delta with finish_reason "tool_calls".
    first = deltas[0]
    assert first["role"] == "assistant" and first["content"] is None and first["refusal"] is None
    assert first["tool_calls"] == [{"index": 0, "id": first["tool_calls"][0]["id"], "type": "function",
                                    "function": {"name": "get_weather", "arguments": ""}}]
    fragments = deltas[1:-1]
    assert len(fragments) > 1
    assert all(d == {"tool_calls": [{"index": 0, "function": {"arguments": d["tool_calls"][0]["function"]
                                                                ["arguments"]}}]} for d in fragments)
    assert json.loads("".join(d["tool_calls"][0]["function"]["arguments"] for d in fragments)) == {"city": "Lisbon"}
    assert deltas[-1] == {} and chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert len({c["id"] for c in chunks}) == 1


def test_parallel_tool_calls_and_switching_them_off(live: Any) -> None:
    messages = [{"role": "user", "content": "get_weather Rome and add 2 3"}]
    with live() as (url, headers):
        client = sdk(url, headers)
        both = client.chat.completions.create(model="fake-1", messages=messages, tools=[WEATHER, ADD])
        with client.chat.completions.stream(model="fake-1", messages=messages, tools=[WEATHER, ADD]) as stream:
            streamed = stream.get_final_completion()
        one = client.chat.completions.create(model="fake-1", messages=messages, tools=[WEATHER, ADD],
                                             parallel_tool_calls=False)
    calls = both.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "add"]
    assert len({c.id for c in calls}) == 2
    assert json.loads(calls[1].function.arguments) == {"a": 2, "b": 2}
    assert [(c.id, c.function.name, c.function.arguments) for c in streamed.choices[0].message.tool_calls] == \
        [(c.id, c.function.name, c.function.arguments) for c in calls]
    assert [c.function.name for c in one.choices[0].message.tool_calls] == ["get_weather"]


def test_tool_choice_forced_and_none(live: Any) -> None:
    messages = [{"role": "user", "content": "tell me something about Rome"}]
    with live() as (url, headers):
        client = sdk(url, headers)
        auto = client.chat.completions.create(model="fake-1", messages=messages, tools=[WEATHER, ADD])
        forced = client.chat.completions.create(model="fake-1", messages=messages, tools=[WEATHER, ADD],
                                                tool_choice={"type": "function", "function": {"name": "add"}})
        required = client.chat.completions.create(model="fake-1", messages=messages, tools=[WEATHER, ADD],
                                                  tool_choice="required")
        none = client.chat.completions.create(
            model="fake-1", tools=[WEATHER], tool_choice="none",
            messages=[{"role": "user", "content": "get_weather Rome"}])
    assert auto.choices[0].message.tool_calls is None and auto.choices[0].finish_reason == "stop"
    assert [c.function.name for c in forced.choices[0].message.tool_calls] == ["add"]
    assert forced.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in required.choices[0].message.tool_calls] == ["get_weather"]
    assert none.choices[0].message.tool_calls is None and none.choices[0].finish_reason == "stop"
    assert "get_weather Rome" in none.choices[0].message.content


class City(BaseModel):
    name: str
    population: int
    capital: bool


def test_strict_json_schema_response(live: Any) -> None:
    with live() as (url, headers):
        client = sdk(url, headers)
        # The SDK turns the pydantic model into response_format json_schema with strict: true.
        parsed = client.chat.completions.parse(
            model="fake-1", messages=[{"role": "user", "content": "Describe Lyon, population 500000"}],
            response_format=City)
        loose = client.chat.completions.create(model="fake-1", messages=[{"role": "user", "content": "hi"}],
                                               response_format={"type": "json_object"})
    city = parsed.choices[0].message.parsed
    assert isinstance(city, City) and city.population == 500000 and city.capital is True
    assert isinstance(json.loads(loose.choices[0].message.content), dict)


def test_bad_tool_fields_are_one_line_400s(client: Any, auth_headers: dict[str, str]) -> None:
    base = {"messages": [{"role": "user", "content": "hi"}]}
    cases = (
        ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools"),
        ({"messages": [{"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}]}, "tool_call_id"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"response_format": {"type": "json_schema"}}, "json_schema"),
    )
    for extra, word in cases:
        response = client.post("/v1/chat/completions", headers=auth_headers, json={**base, **extra})
        assert response.status_code == 400, response.text
        message = response.json()["error"]["message"]
        assert word in message and "\n" not in message
