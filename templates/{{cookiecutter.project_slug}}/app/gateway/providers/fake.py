"""`fake`: a deterministic offline model, so dev and tests run with no keys and no network.

It is chosen only when no real provider has credentials, and the app logs a WARNING at startup while it
is active. Its answer depends only on the prompt, it streams one word per FAKE_TOKEN_DELAY_MS, and it
reports usage like a real provider (one token per word). It follows one kind of instruction, so that a prompt
change shows up in offline evals: every system-prompt line `Always mention: <text>` appends <text> to the answer.

Tools, deterministically: it calls every tool whose name appears in the last user message (only the first
with `parallel_tool_calls: false`; the named one with a forced `tool_choice`; the first tool with
`"required"`), with arguments built from the tool's JSON schema, streamed in fragments as OpenAI does.
After tool results it answers in text that quotes them. A `response_format` gets JSON that fits it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncGenerator
from typing import Any

import anyio

from app.gateway.base import Event, ModelCall, tool_call_args, tool_call_start
from app.settings import Settings

MENTION = re.compile(r"^\s*Always mention:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")


def _last_user(call: ModelCall) -> str:
    return next((m.content for m in reversed(call.messages) if m.role == "user"), "")


def answer(call: ModelCall) -> list[str]:
    last = _last_user(call)
    digest = hashlib.sha256(call.text().encode()).digest()
    echo = last.split()[:12]
    filler = [WORDS[b % len(WORDS)] for b in digest[:8]]
    limit = call.params.get("max_tokens") or call.params.get("max_completion_tokens")
    system = "\n".join(m.content for m in call.messages if m.role == "system")
    mentions = [word for text in MENTION.findall(system) for word in ["|", *text.split()]]
    tail = call.messages[-1] if call.messages else None
    if tail is not None and tail.role == "tool":
        # Answer from the tool results of this turn, so a client can see they reached the model.
        results: list[str] = []
        for m in reversed(call.messages):
            if m.role != "tool":
                break
            results.insert(0, m.content)
        words = ["[fake", "provider]", "Tool", "results:", *" | ".join(results).split(), "|", *filler[:2]]
    else:
        words = ["[fake", "provider]", "You", "said:", *echo, "|", *filler, *mentions]
    return words[:limit] if limit else words


def example(schema: dict[str, Any], hint: str, name: str = "value") -> Any:
    """A value that satisfies a (simple) JSON schema; strings come from `hint`, the user's words."""
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return example(schema[key][0], hint, name)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {key: example(sub, hint, key) for key, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [example(schema.get("items") or {}, hint, name)]
    if kind in ("integer", "number"):
        found = re.search(r"-?\d+(\.\d+)?", hint)
        value = float(found.group()) if found else schema.get("minimum", 1)
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return hint.strip() or name


def pick_tools(call: ModelCall) -> list[dict[str, Any]]:
    tools = [t["function"] for t in call.tools()]
    choice = call.params.get("tool_choice")
    if not tools or choice == "none" or (call.messages and call.messages[-1].role == "tool"):
        return []
    if isinstance(choice, dict):
        return [t for t in tools if t["name"] == choice["function"]["name"]][:1]
    last = _last_user(call)
    named = [t for t in tools if re.search(rf"\b{re.escape(t['name'])}\b", last)]
    if not named and choice == "required":
        named = tools[:1]
    return named[:1] if call.params.get("parallel_tool_calls") is False else named


def arguments(tool: dict[str, Any], last: str) -> str:
    # The words after the tool's name (up to the next tool name or the end) are its string input.
    after = last.split(tool["name"], 1)[1] if tool["name"] in last else last
    hint = re.split(r"\band\b|[,;]", after, maxsplit=1)[0].strip(" :?.!\"'")
    return json.dumps(example(tool.get("parameters") or {"type": "object", "properties": {}}, hint),
                      separators=(",", ":"))


class FakeProvider:
    name = "fake"

    def __init__(self, settings: Settings) -> None:
        self._delay = settings.fake_token_delay_ms / 1000

    def check(self, call: ModelCall) -> None:
        return None  # every feature: dev and tests cover the whole tool loop offline

    async def stream(self, call: ModelCall) -> AsyncGenerator[Event, None]:
        request_id = "fake-" + hashlib.sha256(call.text().encode()).hexdigest()[:16]
        limit = call.params.get("max_tokens") or call.params.get("max_completion_tokens")
        prompt_tokens = sum(len(m.content.split()) + 1 for m in call.messages)
        yield Event(response_model=call.model, response_id=request_id)
        tools = pick_tools(call)
        if tools:
            produced = 0
            for index, tool in enumerate(tools):
                call_id = "call_" + hashlib.sha256(f"{request_id}/{index}/{tool['name']}".encode()).hexdigest()[:24]
                yield Event(tool_calls=[tool_call_start(index, call_id, tool["name"])])
                args = arguments(tool, _last_user(call))
                for start in range(0, len(args), 8):
                    if self._delay:
                        await anyio.sleep(self._delay)
                    yield Event(tool_calls=[tool_call_args(index, args[start:start + 8])])
                produced += 1 + len(args) // 4
            yield Event(finish_reason="tool_calls", input_tokens=prompt_tokens, output_tokens=produced)
            return
        fmt = call.params.get("response_format")
        if fmt:
            schema = (fmt.get("json_schema") or {}).get("schema") or {"type": "object", "properties": {
                "answer": {"type": "string"}}}
            text = json.dumps(example(schema, " ".join(_last_user(call).split()[:12])))
            words = text.split(" ")
        else:
            words = answer(call)
        for i, word in enumerate(words):
            if self._delay:
                await anyio.sleep(self._delay)
            yield Event(text=word if i == 0 else " " + word)
        finish = "length" if limit and not fmt and len(words) >= limit else "stop"
        yield Event(finish_reason=finish, input_tokens=prompt_tokens, output_tokens=len(words))

    async def aclose(self) -> None:
        return None
