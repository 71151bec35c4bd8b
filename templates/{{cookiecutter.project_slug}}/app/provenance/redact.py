"""Redaction for `trace_content=redacted`: emails, phone numbers and payment card numbers.

Card numbers must pass the Luhn check, so order ids and timestamps that merely look long stay readable.
"""

from __future__ import annotations

import re
from typing import Literal

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
# International (+country) or national formats with 9-15 digits, separators allowed.
PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}(?![\w])")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[CARD]" if 13 <= len(digits) <= 19 and _luhn(digits) else match.group()


def _phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[PHONE]" if 9 <= len(digits) <= 15 else match.group()


def redact(text: str) -> str:
    text = EMAIL.sub("[EMAIL]", text)
    text = CARD.sub(_card, text)
    return PHONE.sub(_phone, text)


def keep(text: str | None, mode: Literal["full", "redacted", "metadata"]) -> str | None:
    """The text to store under a trace_content mode: all of it, redacted, or none."""
    if text is None or mode == "metadata":
        return None
    return text if mode == "full" else redact(text)
