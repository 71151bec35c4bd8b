"""Redaction for `trace_content=redacted`: emails, phone numbers and payment card numbers.

Every pass is linear in the text's length: a tenant controls the text, so a pattern that backtracks
(an unbounded run before `@`, say) would let one request hold the interpreter lock for minutes. Emails
are found from each `@` outwards by plain scanning; the card and phone patterns only repeat bounded
groups. Text beyond `MAX_CHARS` is not stored at all, so the work per request is capped too.

Card numbers must pass the Luhn check, and IP addresses, dates and times are not phones, so order ids
and log lines stay readable.
"""

from __future__ import annotations

import re
from typing import Literal

# What a record keeps of prompts and answers (settings.trace_content).
TraceContent = Literal["full", "redacted", "metadata"]

# Stored content per field; the rest is dropped (and says so). 64 K characters redact in ~10 ms.
MAX_CHARS = 65_536
_LOCAL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")
_DOMAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-")
CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
# International (+country) or national formats with 9-15 digits, separators allowed; not the tail of a
# dotted or colon-separated number (IP addresses, times).
PHONE = re.compile(r"(?<![\w+])(?<!\d[.:])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}"
                   r"(?!\w|[.:]\d)")
IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _email_end(text: str, at: int) -> int:
    """End of the address whose `@` is at `at`, or -1: the domain is the longest run of domain
    characters that ends in `.` plus two or more letters (what the classic regex matches)."""
    end = at + 1
    while end < len(text) and text[end] in _DOMAIN:
        end += 1
    dot = text.rfind(".", at + 2, end)
    while dot != -1:
        tld = dot + 1
        while tld < end and text[tld].isascii() and text[tld].isalpha():
            tld += 1
        if tld - dot - 1 >= 2:
            return tld
        dot = text.rfind(".", at + 2, dot)
    return -1


def redact_emails(text: str) -> str:
    out: list[str] = []
    done = 0  # text[:done] is already in `out`
    at = text.find("@")
    while at != -1:
        start = at
        while start > done and text[start - 1] in _LOCAL:
            start -= 1
        end = _email_end(text, at) if start < at else -1
        if end == -1:
            at = text.find("@", at + 1)
            continue
        out.append(text[done:start])
        out.append("[EMAIL]")
        done = end
        at = text.find("@", end)
    out.append(text[done:])
    return "".join(out)


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
    found = match.group()
    if IPV4.fullmatch(found) or ISO_DATE.search(found):
        return found
    digits = re.sub(r"\D", "", found)
    return "[PHONE]" if 9 <= len(digits) <= 15 else found


def redact(text: str) -> str:
    """Redacted text, capped at MAX_CHARS: spans call this on the event loop, so its cost is bounded."""
    text = redact_emails(cap(text))
    text = CARD.sub(_card, text)
    return PHONE.sub(_phone, text)


def cap(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    return text[:MAX_CHARS] + f" [... {len(text) - MAX_CHARS} more characters not stored]"


def keep(text: str | None, mode: TraceContent) -> str | None:
    """The text to store under a trace_content mode: all of it, redacted, or none. Long text is capped
    before redaction, which runs in the database worker thread with the rest of the record."""
    if text is None or mode == "metadata":
        return None
    return text if mode == "full" else redact(text)
