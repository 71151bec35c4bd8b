"""The OpenAI chat-completions wire format (the subset clients use), plus the service's result type."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.gateway.base import Message, ToolCall


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class FunctionCall(BaseModel):
    # SDKs echo back what they parsed (`parsed_arguments`, `index`): accepted and ignored, as OpenAI does.
    model_config = ConfigDict(extra="ignore")
    name: str
    arguments: str = "{}"


class ToolCallIn(BaseModel):
    """An assistant turn's tool call, sent back by the client with the conversation."""

    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1)
    type: Literal["function"] = "function"
    function: FunctionCall


class FunctionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["function"]
    function: FunctionSpec


class NamedToolChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["function"]
    function: dict[str, str]

    @field_validator("function")
    @classmethod
    def _has_name(cls, function: dict[str, str]) -> dict[str, str]:
        if not function.get("name"):
            raise ValueError("tool_choice.function.name is required")
        return function


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("response_format: type json_schema needs a `json_schema` object")
        return self


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _tool_fields(self) -> ChatMessage:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("messages: a message with role 'tool' needs the `tool_call_id` it answers")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("messages: only assistant messages carry `tool_calls`")
        return self

    def parts(self) -> tuple[dict[str, Any], ...]:
        """Content parts worth keeping as parts (any image); plain text is sent as a string."""
        if isinstance(self.content, list) and any(p.type == "image_url" for p in self.content):
            for part in self.content:
                if part.type not in ("text", "image_url"):
                    raise ValueError(f"messages: content part type '{part.type}' is not supported "
                                     "(use text or image_url)")
            return tuple(p.model_dump(exclude_none=True) for p in self.content)
        return ()

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
    tools: list[ToolSpec] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    # Accepted only to be refused clearly: silently dropping them would change what the client gets.
    n: int | None = None
    functions: list[Any] | None = None

    @model_validator(mode="after")
    def _supported(self) -> ChatRequest:
        if self.n not in (None, 1):
            raise ValueError("n: only one choice per request is supported; send n=1 or leave it out")
        if self.functions:
            raise ValueError("functions: the legacy `functions` field is not supported; send `tools` instead")
        names = [t.function.name for t in self.tools or []]
        if isinstance(self.tool_choice, NamedToolChoice) and self.tool_choice.function["name"] not in names:
            raise ValueError(f"tool_choice: '{self.tool_choice.function['name']}' is not one of `tools` "
                             f"({', '.join(names) or 'none given'})")
        if self.tool_choice in ("required",) and not names:
            raise ValueError("tool_choice: 'required' needs at least one entry in `tools`")
        return self

    @field_validator("messages")
    @classmethod
    def _has_user_turn(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if not any(m.role == "user" for m in messages):
            raise ValueError("messages needs at least one message with role 'user'")
        return messages

    def params(self) -> dict[str, Any]:
        keys = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "user")
        params = {k: getattr(self, k) for k in keys if getattr(self, k) is not None}
        # Tool calling and structured output travel in OpenAI naming; each adapter translates or refuses them.
        if self.tools:
            params["tools"] = [t.model_dump(exclude_none=True) for t in self.tools]
        if self.tool_choice is not None:
            params["tool_choice"] = (self.tool_choice if isinstance(self.tool_choice, str)
                                     else self.tool_choice.model_dump())
        if self.parallel_tool_calls is not None:
            params["parallel_tool_calls"] = self.parallel_tool_calls
        if self.response_format is not None and self.response_format.type != "text":
            params["response_format"] = self.response_format.model_dump(exclude_none=True, by_alias=True)
        return params

    def gateway_messages(self) -> list[Message]:
        """The conversation in the gateway's neutral form (developer turns count as system turns)."""
        messages = []
        for m in self.messages:
            role = "system" if m.role == "developer" else m.role
            calls = tuple(ToolCall(t.id, t.function.name, t.function.arguments) for t in m.tool_calls or [])
            messages.append(Message(role, m.text(), tool_calls=calls, tool_call_id=m.tool_call_id, parts=m.parts()))
        return messages


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
    tool_calls: list[ToolCall] = field(default_factory=list)

    def to_openai(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.text, "refusal": None}
        if self.tool_calls:
            # As OpenAI answers a tool call: no text means content null, not "".
            message["content"] = self.text or None
            message["tool_calls"] = [t.to_openai() for t in self.tool_calls]
        return {
            "id": f"chatcmpl-{self.interaction_id}",
            "object": "chat.completion",
            "created": self.created,
            "model": self.response_model or self.model,
            "choices": [{"index": 0, "message": message,
                         "finish_reason": self.finish_reason or "stop", "logprobs": None}],
            "usage": {"prompt_tokens": self.input_tokens, "completion_tokens": self.output_tokens,
                      "total_tokens": self.input_tokens + self.output_tokens},
        }
