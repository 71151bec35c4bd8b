"""The OpenAI chat-completions wire format (the subset clients use), plus the service's result type."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content if part.type == "text")


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    """POST /v1/chat/completions body. Unknown OpenAI fields are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = Field(None, description="Model name; the model map in config picks its provider.")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    user: str | None = None
    metadata: dict[str, str] | None = Field(None, description="`prompt_name`/`prompt_version` pick a prompt file.")
    # Accepted only to be refused clearly: silently dropping them would change what the client gets.
    n: int | None = None
    tools: list[Any] | None = None
    functions: list[Any] | None = None

    @model_validator(mode="after")
    def _supported(self) -> ChatRequest:
        if self.n not in (None, 1):
            raise ValueError("n: only one choice per request is supported; send n=1 or leave it out")
        if self.tools or self.functions:
            raise ValueError("tools: tool/function calling is not supported by this gateway; leave `tools` out")
        return self

    @field_validator("messages")
    @classmethod
    def _has_user_turn(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if not any(m.role == "user" for m in messages):
            raise ValueError("messages needs at least one message with role 'user'")
        return messages

    def params(self) -> dict[str, Any]:
        keys = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "user")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


@dataclass
class ChatResult:
    """The outcome of `service.complete`: the answer, who produced it, and what it cost in tokens.

    `interaction_id` is the provenance record (`GET /v1/interactions/{id}`); `response_id` is the id the
    provider returned; `model` is the model actually used (after any fallback).
    """

    interaction_id: str
    request_id: str
    text: str
    finish_reason: str | None
    provider: str
    model: str
    response_model: str | None
    response_id: str | None
    input_tokens: int
    output_tokens: int
    usage_estimated: bool
    retrieved_document_ids: list[str] = field(default_factory=list)
    created: int = field(default_factory=lambda: int(time.time()))

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{self.interaction_id}",
            "object": "chat.completion",
            "created": self.created,
            "model": self.response_model or self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": self.text},
                         "finish_reason": self.finish_reason or "stop", "logprobs": None}],
            "usage": {"prompt_tokens": self.input_tokens, "completion_tokens": self.output_tokens,
                      "total_tokens": self.input_tokens + self.output_tokens},
        }
