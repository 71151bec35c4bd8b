"""Eval datasets: JSON Lines, one case per line. A case is the conversation to send and what a good answer
must satisfy; every expectation is optional, and a case with none is run and recorded but not scored.

    {"id": "refunds", "messages": [{"role": "user", "content": "How long do refunds take?"}],
     "expected_facts": ["30 days"], "regex": ["\\\\d+ days"], "expected_document_ids": ["refunds"],
     "expected_tool_calls": ["lookup_order"], "json_schema": {"type": "object"}, "rubric": "polite"}
{%- if cookiecutter.use_case == 'agents' %}

A case with `"agent": "assistant"` runs through that agent (app/evals/agents.py), so its tools really run.
{%- endif %}
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class EvalError(ValueError):
    """Bad input to an eval command: printed as one line, exit status 2."""


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant"]
    content: str


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=200)
    messages: list[Turn] = Field(min_length=1)
    expected_facts: list[str] = Field(default_factory=list, description="Substrings the answer must contain.")
    regex: list[str] = Field(default_factory=list, description="Patterns the answer must match.")
    expected_document_ids: list[str] = Field(default_factory=list, description="Documents retrieval should find.")
    expected_tool_calls: list[str] = Field(default_factory=list, description="Tool names the model should call.")
    json_schema: dict[str, Any] | None = Field(None, description="The answer must be JSON valid against this.")
    rubric: str | None = Field(None, description="For the optional LLM judge (--judge): what a good answer does.")
    meta: dict[str, Any] = Field(default_factory=dict, description="Free-form: origin, rating, comment, reference.")
{%- if cookiecutter.use_case == 'agents' %}
    agent: str | None = Field(None, description="Run through this agent of agents.json (its tools run) instead of "
                                                "one chat completion; `expected_tool_calls` checks what it called.")
{%- endif %}

    @field_validator("regex")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"regex {pattern!r} does not compile: {exc}") from None
        return patterns

    @field_validator("messages")
    @classmethod
    def _has_user(cls, messages: list[Turn]) -> list[Turn]:
        if not any(m.role == "user" for m in messages):
            raise ValueError("needs at least one message with role 'user'")
        return messages

    def scored(self) -> bool:
        return bool(self.expected_facts or self.regex or self.expected_document_ids or self.expected_tool_calls
                    or self.json_schema is not None)


def load(path: str | Path) -> tuple[list[Case], str]:
    """The cases of a dataset file and the sha256 of its bytes; EvalError names the bad line."""
    file = Path(path)
    if not file.is_file():
        raise EvalError(f"dataset {file} not found; pass --dataset PATH (a .jsonl file, one case per line)")
    raw = file.read_bytes()
    cases: list[Case] = []
    seen: set[str] = set()
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            case = Case.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            raise EvalError(f"{file}:{number}: not JSON ({exc.msg}); each line must be one JSON object") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "case"
            raise EvalError(f"{file}:{number}: {where}: {first['msg']}") from None
        if case.id in seen:
            raise EvalError(f"{file}:{number}: duplicate case id {case.id!r}; ids must be unique")
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise EvalError(f"dataset {file} has no cases")
    return cases, hashlib.sha256(raw).hexdigest()


def dump(cases: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(c, ensure_ascii=False, separators=(", ", ": ")) + "\n" for c in cases)
