"""Scorers: pure functions from an answer (and its provenance) to a score in [0, 1].

Deterministic ones only; the optional LLM judge lives in runner.py because it calls a model. Each score is
1.0 when the expectation is fully met, so "pass" means every applicable score is 1.0.
"""

from __future__ import annotations

import json
import re
from typing import Any


def contains(text: str, facts: list[str]) -> float:
    """Share of the expected facts found in the answer (case-insensitive, whitespace-normalised)."""
    haystack = " ".join(text.split()).casefold()
    return sum(" ".join(f.split()).casefold() in haystack for f in facts) / len(facts)


def regex(text: str, patterns: list[str]) -> float:
    return sum(re.search(p, text) is not None for p in patterns) / len(patterns)


def _json_part(text: str) -> str:
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    return fenced.group(1) if fenced else text


def json_schema(text: str, schema: dict[str, Any]) -> tuple[float, str | None]:
    """1.0 when the answer (or its fenced ```json block) is JSON valid against the schema; else 0 and why."""
    try:
        import jsonschema
    except ImportError:
        raise RuntimeError("the json_schema scorer needs jsonschema: pip install -e '.[dev]'") from None
    try:
        value = json.loads(_json_part(text))
    except json.JSONDecodeError as exc:
        return 0.0, f"not JSON: {exc.msg}"
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
    return (1.0, None) if error is None else (0.0, error.message)


def tools_called(called: list[str], expected: list[str]) -> float:
    return sum(name in called for name in expected) / len(expected)


def retrieval(retrieved: list[str], expected: list[str]) -> tuple[float, float]:
    """(hit, reciprocal rank): hit is 1 when any expected document was retrieved; the reciprocal rank is
    1/position of the first one (0 when none), which averages to MRR over a dataset."""
    for position, document_id in enumerate(retrieved, start=1):
        if document_id in expected:
            return 1.0, 1.0 / position
    return 0.0, 0.0


def tool_names(result: Any, record: dict[str, Any]) -> list[str]:
    """Tool calls made while answering, wherever the service reports them (result or record)."""
    calls = getattr(result, "tool_calls", None) or record.get("tool_calls") or record.get("steps") or []
    names = []
    for call in calls:
        if isinstance(call, dict):
            function = call.get("function")
            name = function.get("name") if isinstance(function, dict) else call.get("name") or call.get("tool")
        else:
            name = getattr(call, "name", None)
        if name:
            names.append(str(name))
    return names
