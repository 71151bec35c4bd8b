"""What message content may leave the process in spans, per TRACE_CONTENT (full | redacted | metadata)."""

import json
import re
from typing import Any

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_PHONE = re.compile(r"(?<![\w])\+?\d[\d ().-]{7,}\d(?![\w])")


def _luhn(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def redact(text: str) -> str:
    """Mask emails, payment card numbers (Luhn-checked) and phone numbers."""
    text = _EMAIL.sub("[EMAIL]", text)
    text = _CARD.sub(lambda m: "[CARD]" if _luhn(m.group()) else m.group(), text)
    return _PHONE.sub(lambda m: "[PHONE]" if sum(c.isdigit() for c in m.group()) >= 8 else m.group(), text)


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if isinstance(content, list):  # OpenAI content parts
        return [
            {"type": "text", "content": part.get("text", "") if isinstance(part, dict) else str(part)}
            for part in content
        ]
    return [{"type": "text", "content": "" if content is None else str(content)}]


def to_messages(value: str | list[dict[str, Any]], role: str, finish_reason: str | None = None) -> list[dict[str, Any]]:
    """GenAI semconv message shape: [{"role", "parts": [{"type": "text", "content"}]}]."""
    if isinstance(value, str):
        messages = [{"role": role, "parts": _parts(value)}]
    else:
        messages = [{"role": m.get("role", role), "parts": _parts(m.get("content"))} for m in value]
    if finish_reason is not None and messages:
        messages[-1]["finish_reason"] = finish_reason
    return messages


def filtered(messages: list[dict[str, Any]], mode: str) -> str | None:
    """JSON for the span attribute, or None when content must not be exported."""
    if mode == "metadata":
        return None
    if mode == "redacted":
        messages = [
            {**m, "parts": [{**p, "content": redact(str(p.get("content", "")))} for p in m["parts"]]} for m in messages
        ]
    return json.dumps(messages, ensure_ascii=False)
