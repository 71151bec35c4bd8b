"""`fake`: a deterministic offline model, so dev and tests run with no keys and no network.

It is chosen only when no real provider has credentials, and the app logs a WARNING at startup while it
is active. Its answer depends only on the prompt, it streams one word per FAKE_TOKEN_DELAY_MS, and it
reports usage like a real provider (one token per word). It follows one kind of instruction, so that a prompt
change shows up in offline evals: every system-prompt line `Always mention: <text>` appends <text> to the answer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator

import anyio

from app.gateway.base import Event, ModelCall
from app.settings import Settings

MENTION = re.compile(r"^\s*Always mention:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")


def answer(call: ModelCall) -> list[str]:
    last = next((m.content for m in reversed(call.messages) if m.role == "user"), "")
    digest = hashlib.sha256(call.text().encode()).digest()
    echo = last.split()[:12]
    filler = [WORDS[b % len(WORDS)] for b in digest[:8]]
    limit = call.params.get("max_tokens") or call.params.get("max_completion_tokens")
    system = "\n".join(m.content for m in call.messages if m.role == "system")
    mentions = [word for text in MENTION.findall(system) for word in ["|", *text.split()]]
    words = ["[fake", "provider]", "You", "said:", *echo, "|", *filler, *mentions]
    return words[:limit] if limit else words


class FakeProvider:
    name = "fake"

    def __init__(self, settings: Settings) -> None:
        self._delay = settings.fake_token_delay_ms / 1000

    async def stream(self, call: ModelCall) -> AsyncIterator[Event]:
        words = answer(call)
        request_id = "fake-" + hashlib.sha256(call.text().encode()).hexdigest()[:16]
        limit = call.params.get("max_tokens") or call.params.get("max_completion_tokens")
        yield Event(response_model=call.model, response_id=request_id)
        for i, word in enumerate(words):
            if self._delay:
                await anyio.sleep(self._delay)
            yield Event(text=word if i == 0 else " " + word)
        prompt_tokens = sum(len(m.content.split()) + 1 for m in call.messages)
        finish = "length" if limit and len(words) >= limit else "stop"
        yield Event(finish_reason=finish, input_tokens=prompt_tokens, output_tokens=len(words))

    async def aclose(self) -> None:
        return None
